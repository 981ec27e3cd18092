"""The routing use cases' fixture, shared by every integration test module here."""

from .test_use_cases import routing

__all__ = ["routing"]

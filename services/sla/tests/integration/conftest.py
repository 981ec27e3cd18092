"""sla's use-case fixtures, shared by every integration test module here."""

from .test_sla_batches import clock, pool, sla

__all__ = ["clock", "pool", "sla"]

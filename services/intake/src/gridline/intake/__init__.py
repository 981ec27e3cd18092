"""Gridline intake service."""

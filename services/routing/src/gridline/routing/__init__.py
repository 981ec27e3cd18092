"""Gridline routing service."""

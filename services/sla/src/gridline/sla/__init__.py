"""Gridline sla service."""

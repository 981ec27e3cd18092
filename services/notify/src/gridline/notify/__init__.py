"""Gridline notify service."""

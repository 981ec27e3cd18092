"""The rules a city runs on: its jurisdiction (grids and their parents) and its catalogue."""

"""Execution schedules: patch-based inference of the first stage (patch.py) and its search (search.py)."""

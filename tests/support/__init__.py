"""Helpers shared by more than one test package (their fixtures are in tests/conftest.py)."""

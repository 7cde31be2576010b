"""Helpers shared by test modules (plain functions and constants; the fixtures are in conftest)."""

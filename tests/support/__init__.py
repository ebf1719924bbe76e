"""Helpers the test suites share beyond fixtures: real services started for a test session."""

"""Metrics: pure functions of samples or feature arrays."""

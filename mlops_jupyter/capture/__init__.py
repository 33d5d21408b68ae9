"""Capture: what a tracked run records (data hashes, params, metrics, explanations, environment)."""

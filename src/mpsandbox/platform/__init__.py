"""Metrics Platform rules: stream configs, sampling, attributes, identifiers, experiments (pure functions)."""

"""Metrics, logs and error tracking: what operators see of a running kernel."""

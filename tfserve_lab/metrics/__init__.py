"""Observers of engine events: Prometheus families, rolling statistics and the monitoring config."""

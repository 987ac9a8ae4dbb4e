"""Monitoring: drift, live model quality and the stack dashboard."""

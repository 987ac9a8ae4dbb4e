"""Serving: the model endpoint and its config."""

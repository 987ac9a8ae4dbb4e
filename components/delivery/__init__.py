"""Delivery: the CI deploy and preview identities."""

"""Notifications: the stack's encrypted SNS topic."""

"""Security primitives: the IAM policy model, the stack key and service roles."""

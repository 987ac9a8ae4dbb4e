"""Networking: the private VPC a stack can create."""

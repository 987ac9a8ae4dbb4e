"""Storage: the private, TLS-only, KMS-encrypted bucket."""

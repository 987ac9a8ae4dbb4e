"""Code packages: the training source and monitoring Lambda packages, content-addressed."""

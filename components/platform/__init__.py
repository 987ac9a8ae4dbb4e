"""The platform: the stack key, buckets, topic and boundary every model shares."""

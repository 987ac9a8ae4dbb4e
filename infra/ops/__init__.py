"""Act on a deployed stack: data, retraining, rollback, monitoring, local runs."""

"""The ``mlops`` commands, one module per group."""

"""The mlops-stack Pulumi program (``__main__``), its typed config, offline synth and the ``mlops`` CLI."""

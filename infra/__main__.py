"""Pulumi entry point (``main: infra/`` in Pulumi.yaml). Thin: read the typed config, compose components."""

import sys
from pathlib import Path

# Pulumi runs this file by path; make the project's packages importable without an install step.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import main  # noqa: E402

main()

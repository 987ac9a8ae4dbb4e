"""Pulumi entry point (``main: infra/`` in Pulumi.yaml). Thin: read the typed config, compose components.

Pulumi runs it in the project's virtualenv (Pulumi.yaml ``virtualenv: .venv``), where the project is installed
(``make install`` / ``make deploy-install``): ``infra`` imports as the installed package, no ``sys.path`` edit.
"""

from infra.program import main

main()

"""Shared fixtures: synth manifests of the shipped stacks, and a recording mock engine for components."""

from __future__ import annotations

import pytest

from infra.config import STACKS_DIR
from infra.review.synth import Manifest, run_program, synth_file

SHIPPED_STACKS = ("dev", "staging", "prod", "local")


@pytest.fixture(scope="session")
def manifests() -> dict[str, Manifest]:
    """Each shipped stack synthesized once through the real ``infra/`` program."""
    return {name: synth_file(STACKS_DIR / f"Pulumi.{name}.yaml")[1] for name in SHIPPED_STACKS}


@pytest.fixture
def register():
    """Run a function that declares resources under the recording mock engine; returns the manifest."""

    def _register(fn, stack: str = "test", region: str = "us-east-1") -> Manifest:
        return run_program(fn, stack=stack, region=region)

    return _register

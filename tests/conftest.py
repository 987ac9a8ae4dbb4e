"""Shared fixtures: synth manifests of the shipped stacks, and a recording mock engine for components."""

from __future__ import annotations

import os

# One OpenMP thread per test process (set before numpy, scikit-learn or xgboost load their thread pools; subprocesses
# inherit it; an explicit OMP_NUM_THREADS wins). `make test` already runs a worker per core: two workers' pools of two
# threads on two cores spin against each other, and scikit-learn's single-row predictions in
# tests/training/test_task_outputs_monitored.py took 6-10 CPU-s a test in the suite against 0.2-1 alone.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from infra.config import STACKS_DIR  # noqa: E402
from infra.review.synth import Manifest, run_program, synth_file  # noqa: E402

SHIPPED_STACKS = ("dev", "staging", "prod", "local")

# `make test` runs on two workers (pytest-xdist). Each tier that owns a service stays on ONE worker: one LocalStack per
# run (tests/integration), one container-environment build (tests/runtime); the unit tests are spread over both.
# xdist's own `xdist_group` marks do not group under pytest 9.2 (xdist 3.8 rewrites a node id attribute pytest no
# longer reads), so the grouping is a scheduler: a tier is one scope, every other test its own.
# The type checks are a third: four mypy runs share one cache when they run one after the other (the first pays for
# pulumi-aws's stubs, ~1 CPU-min cold; the others are incremental), not when split over workers.
# The scaffold tests' module fixture trains and tests six generated models at once: once, on one worker.
TIERS = ("tests/runtime/", "tests/integration/", "tests/components/test_typing.py", "tests/infra/test_scaffold.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class TierScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return next((tier for tier in TIERS if nodeid.startswith(tier)), nodeid)

    return TierScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """The two long tiers first, so that under xdist each starts at once on its own worker and the unit tests fill
    in around them (in one process the order is the same set of tests)."""
    def rank(item) -> int:
        node = item.nodeid
        return next((i for i, tier in enumerate(TIERS) if node.startswith(tier)), len(TIERS))

    items.sort(key=rank)  # stable: the order within a tier and among the unit tests is pytest's


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

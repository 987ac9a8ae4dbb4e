"""What the drift and quality benchmarks measure a method with, and where the other tools' virtualenvs live."""

from __future__ import annotations

import os
import resource
from pathlib import Path

BENCHENVS = Path(os.environ.get("MLOPS_BENCHENVS") or Path(__file__).resolve().parent.parent / ".bench-envs")
"""One virtualenv per compared tool (``<name>/bin/python``): ``$MLOPS_BENCHENVS``, default ``.bench-envs/``."""


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not carried over from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User plus system CPU of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

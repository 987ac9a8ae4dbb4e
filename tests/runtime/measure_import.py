"""Measure what `import inference` (the serving entry point) costs in the image's environment, per worker.

    .venv/bin/python tests/runtime/measure_import.py [runs] [--serving-env]

``--serving-env``: with the stack's serving environment (training._deps.SERVING_ENVIRONMENT) on top of the image's.

Runs in one container of the image (see sm_agent.py): installs the code package's wheels once, as the first
import does, then times fresh interpreters importing ``inference`` (as each gunicorn worker does) and prints the
mean and the ten costliest modules of the last run (``-X importtime``, cumulative).
"""

import os
import sys
import tempfile
from pathlib import Path

# What the image does: no bytecode cache (image.py's docstring).
os.environ.setdefault("MLOPS_RUNTIME_BYTECODE", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import image  # noqa: E402
from sm_agent import Container  # noqa: E402

from components.code.package import build_sourcedir  # noqa: E402

SCRIPT = r"""
set -e
mkdir -p /opt/ml/model/code && cd /opt/ml/model/code && tar xzf /opt/ml/sourcedir.tar.gz
python -c 'import sys; sys.path.insert(0, "."); from training._deps import ensure_dependencies; ensure_dependencies()'
for i in $(seq "$1"); do
  python -X importtime -c 'import time, sys; t = time.perf_counter(); sys.path.insert(0, "."); import inference; print(f"import {time.perf_counter() - t:.2f} s", file=sys.stderr)' 2> /tmp/importtime
  grep '^import [0-9]' /tmp/importtime
done
awk -F'|' '$2+0 > 150000' /tmp/importtime
"""

if __name__ == "__main__":
    from training._deps import SERVING_ENVIRONMENT

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = int(args[0]) if args else 3
    environment = dict(SERVING_ENVIRONMENT) if "--serving-env" in sys.argv else {}
    runtime = image.build()
    with tempfile.TemporaryDirectory() as tmp:
        c = Container(runtime, Path(tmp))
        (c.opt_ml / "sourcedir.tar.gz").write_bytes(build_sourcedir(image.ROOT / "training"))
        result = c.run(["bash", "-c", SCRIPT, "measure", str(runs)], environment, "/opt/ml/output/failure")
        print(result.stdout, result.stderr[-3000:] if result.returncode else "")

"""Time from `serve` to the first /ping 200, for the bootstrap model, in the image's runtime (see sm_agent.py).

    .venv/bin/python tests/runtime/measure_startup.py [--without-bytecode-fix]
"""

import os
import sys
import tempfile
import time
from pathlib import Path

# What the image does: no bytecode cache (image.py's docstring).
os.environ.setdefault("MLOPS_RUNTIME_BYTECODE", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import image  # noqa: E402
from sm_agent import Endpoint  # noqa: E402

from components.serving.endpoint import bootstrap_model_archive  # noqa: E402
from training._deps import SERVING_ENVIRONMENT  # noqa: E402

if __name__ == "__main__":
    environment = dict(SERVING_ENVIRONMENT)
    if "--without-bytecode-fix" in sys.argv:
        environment.pop("PYTHONDONTWRITEBYTECODE")
    runtime = image.build()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        endpoint = Endpoint(runtime, Path(tmp), bootstrap_model_archive(image.ROOT / "training"), environment)
        try:
            endpoint.wait_until_healthy()
            print(f"first /ping 200 after {time.monotonic() - started:.1f} s")
        finally:
            endpoint.stop()

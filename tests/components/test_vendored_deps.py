"""A network-isolated container can install the package's dependencies from the wheels it ships."""

from __future__ import annotations

import io
import subprocess
import tarfile
import venv

from components.code.package import build_sourcedir
from infra.config import PROJECT_ROOT


def test_fresh_interpreter_installs_pins_offline_from_the_package(tmp_path):
    code = tmp_path / "code"
    with tarfile.open(fileobj=io.BytesIO(build_sourcedir(PROJECT_ROOT / "training")), mode="r:gz") as tar:
        tar.extractall(code, filter="data")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    script = (
        "from training._deps import ensure_dependencies, missing; "
        "assert missing(); ensure_dependencies(); assert not missing(), missing(); "
        "import pydantic, typeguard; print('ok', pydantic.VERSION)"
    )
    # No index at all: only the shipped wheels can satisfy the install.
    run = subprocess.run(
        [python, "-c", script], cwd=code, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": "/dev/null", "PYTHONPATH": str(code)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("ok 2.")

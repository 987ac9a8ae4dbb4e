"""Install the package's pinned dependencies from the wheels shipped beside it, without a network.

SageMaker jobs and endpoints of this stack may run network-isolated, so nothing can come from PyPI at
run time. The code package carries ``wheels/`` (see components/code_package.py); when the framework
image lacks a dependency, or has an incompatible version, it is installed from there with
``pip --no-index``. Locally (everything installed) this is a no-op.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

# What the containers are started with is part of the contract with the components that deploy them: it lives in
# training/container_contract.py (standard library only), imported here for the code that runs in the containers.
from training.container_contract import SERVING_ENVIRONMENT, SERVING_SHIM, TRAINING_ENTRYPOINT  # noqa: E402,F401

PACKAGE_DIR = Path(__file__).resolve().parent
REQUIREMENTS = PACKAGE_DIR / "requirements.txt"
WHEELS = PACKAGE_DIR.parent / "wheels"


def _pins() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def missing() -> list[str]:
    """Pinned requirements that are absent or at another version in this interpreter."""
    out = []
    for name, version in _pins().items():
        try:
            if importlib.metadata.version(name) != version:
                out.append(f"{name}=={version}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name}=={version}")
    return out


def ensure_dependencies() -> None:
    need = missing()
    if not need or not WHEELS.is_dir():
        return  # a development checkout: the project's own environment provides them
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--find-links", str(WHEELS), *need],
        check=True,
    )


def copy_serving_code(model_dir: Path) -> Path:
    """Put the serving code into ``model_dir/code`` so the model archive carries it.

    The endpoint runs network-isolated with SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code: it cannot
    download code, so the package, its wheels and the entry point travel inside model.tar.gz.
    """
    import shutil

    code = model_dir / "code"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "sample")
    shutil.copytree(PACKAGE_DIR, code / PACKAGE_DIR.name, ignore=ignore, dirs_exist_ok=True)
    if WHEELS.is_dir():
        shutil.copytree(WHEELS, code / WHEELS.name, dirs_exist_ok=True)
    (code / "inference.py").write_text(SERVING_SHIM)
    return code

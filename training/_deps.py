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

# The serving container imports SAGEMAKER_PROGRAM as a top-level module from the code directory; this
# file (``inference.py`` at the code root) installs the dependencies, then re-exports the handlers.
SERVING_SHIM = (
    '"""Serving entry point (SAGEMAKER_PROGRAM=inference.py): the handlers of training.inference."""\n'
    "from training._deps import ensure_dependencies\n\n"
    "ensure_dependencies()\n"
    "from training.inference import input_fn, model_fn, output_fn, predict_fn  # noqa: E402,F401\n"
)

# The serving container's environment, for every model of the stack (the bootstrap placeholder and each
# registered package). At start the image's serving stack (sagemaker-containers) copies SAGEMAKER_SUBMIT_DIRECTORY
# to /opt/ml/code, writes a setup.py there and runs `pip install .`; pip builds that in an isolated environment and
# downloads setuptools for it from the index, which a network-isolated model cannot reach: `serve` then dies with
# InstallModuleError and /ping answers 502. Turning build isolation off makes pip use the image's own setuptools.
# pip reads PIP_NO_BUILD_ISOLATION inverted (it is the --no-build-isolation flag's variable, whose value pip
# parses as "build isolation on?"), so "false" is what turns isolation *off*.
#
# PYTHONDONTWRITEBYTECODE: the image sets it, and its environment (built by `uv sync`, which does not compile)
# holds no bytecode, so every process compiles pandas, scipy and scikit-learn from source on import: ~10 s per
# server worker on a loaded 2-core instance. Empty (Python reads only a non-empty value as set), the serve process's
# own first import writes the bytecode and each worker then loads it.
SERVING_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "PIP_NO_BUILD_ISOLATION": "false",
    "PYTHONDONTWRITEBYTECODE": "",
}

# The training job's entry point. The image has two `train` console scripts, sagemaker-training's and
# sagemaker-containers', and which one is on PATH depends on the order its environment was installed in (the
# runtime tier saw both). Only sagemaker-training's keeps the failure file the package wrote; the other replaces it
# with "framework error: Traceback ...", so a refused dataset or a bad hyperparameter would reach the CT flow as a
# traceback. Naming the toolkit makes the job independent of that order.
TRAINING_ENTRYPOINT = ("python", "-c", "import sys; from sagemaker_training.cli.train import main; sys.exit(main())")

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

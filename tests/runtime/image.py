"""SageMaker framework images' runtimes, rebuilt without Docker, and jobs run in them as SageMaker runs them.

Two images (:data:`IMAGES`): scikit-learn 1.9-0 (the built-in recipe) and XGBoost 3.2-0 (examples/models/demand).
Both are built the same way by their Dockerfiles in aws/deep-learning-containers (a Python 3.12 venv at /opt/venv,
``uv sync --frozen`` from the image's own lock, the sagemaker-inference decoder patch, the sagemaker-containers
``collections.Mapping`` fix, then the framework's glue package with ``--no-deps``). Described below for
scikit-learn; the XGBoost image differs only in its lock, ENV block and glue (``glue/sagemaker_xgboost_container``).

What is real: the image's Python environment (Python 3.12 and every package of the image's own ``uv.lock``, installed
by ``uv sync --frozen`` from PyPI, with the two patches the image's Dockerfile applies), nginx (Debian's), the
toolkits' entry points (sagemaker-training's ``train``, sagemaker-containers' server), the absolute ``/opt/ml`` and
``/opt/venv`` paths (a private mount namespace) and network isolation (a network namespace with loopback only).
What is written here: the image's thin glue ``sagemaker_sklearn_container`` (``glue/``, see its docstring), and
what the SageMaker agent does around a container: downloading channels and inputs from S3 (a local copy), writing
``/opt/ml/input/config/*.json`` from the job's parameters, and reading the failure file.

Build: ``python tests/runtime/image.py`` (or the first test that needs it) builds under ``~/.cache/mlops-stack/runtime/``
(``$XDG_CACHE_HOME``, or ``MLOPS_RUNTIME_BUILD``) once per hash of the lock, the glue and the recipe; later runs and
other checkouts reuse it.

Bytecode: the image's environment holds none (``uv sync`` does not compile) and its ENV forbids writing any, so every
process of a job compiles pandas, scipy and scikit-learn from source on import (~7 CPU-s on a 2-core machine). So does
a container here by default; the tier's tests instead read a bytecode cache of the environment's site-packages and the
interpreter's standard library,
compiled once beside it (``pycache/``) and bound read-only into each container as ``PYTHONPYCACHEPREFIX``. The image's
ENV block is otherwise unchanged (``PYTHONDONTWRITEBYTECODE=1`` stays: Python still reads a cache it may not write),
and what a container installs or is given at run time (the model's code, ``pip install .`` at serve) still compiles
from source. ``MLOPS_RUNTIME_BYTECODE=0`` runs containers without it, as the image does (the measurement scripts do).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
IMAGE = "sklearn-1.9-0"
SPEC = HERE / "images" / IMAGE
GLUE = HERE / "glue"
XGBOOST = "xgboost-3.2-0"
# Outside the checkout, as pip's and uv's caches are: a fresh clone (CI) reuses an environment built from the same
# lock, glue and recipe (the folder is named by their hash) instead of downloading and building ~1 GB again.
BUILD = Path(os.environ.get("MLOPS_RUNTIME_BUILD")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlops-stack" / "runtime")
# The image's interpreter minor version (its Dockerfile: python3.12 from Amazon Linux 2023).
PYTHON = os.environ.get("MLOPS_IMAGE_PYTHON", "/root/.pyenv/versions/3.12.1/bin/python")
UV = "uv==0.13.9"
NGINX_PACKAGES = ("nginx", "nginx-common")
SITE = "lib/python3.12/site-packages"
# Bumped when the recipe below changes, so that a cached environment built by an older recipe is rebuilt.
RECIPE = "4"
# The bytecode cache of a runtime folder's site-packages (see the module docstring), and where containers see it.
PYCACHE = "pycache"
PYCACHE_MOUNT = "/opt/pycache"

# The image's ENV block (Dockerfile of docker/sklearn/1.9-0), less TEMP, which points at the MMS user's home.
IMAGE_ENV = {
    "PATH": "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONIOENCODING": "utf-8",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "SAGEMAKER_SKLEARN_VERSION": "1.9-0",
    "SM_INPUT": "/opt/ml/input",
    "SM_INPUT_TRAINING_CONFIG_FILE": "/opt/ml/input/config/hyperparameters.json",
    "SM_INPUT_DATA_CONFIG_FILE": "/opt/ml/input/config/inputdataconfig.json",
    "SM_CHECKPOINT_CONFIG_FILE": "/opt/ml/input/config/checkpointconfig.json",
    "SM_MODEL_DIR": "/opt/ml/model",
    "SAGEMAKER_TRAINING_MODULE": "sagemaker_sklearn_container.training:main",
    "SAGEMAKER_SERVING_MODULE": "sagemaker_sklearn_container.serving:main",
    "HOME": "/root",
}

# The XGBoost 3.2-0 image's ENV block (aws/deep-learning-containers docker/xgboost/Dockerfile), less TEMP (the MMS
# user's home) and with LD_LIBRARY_PATH at the venv's lib path (the image's lib64 is the same directory).
XGBOOST_ENV = {
    "PATH": "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONIOENCODING": "utf-8",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "SM_INPUT": "/opt/ml/input",
    "SM_INPUT_TRAINING_CONFIG_FILE": "/opt/ml/input/config/hyperparameters.json",
    "SM_INPUT_DATA_CONFIG_FILE": "/opt/ml/input/config/inputdataconfig.json",
    "SM_CHECKPOINT_CONFIG_FILE": "/opt/ml/input/config/checkpointconfig.json",
    "NCCL_SOCKET_IFNAME": "eth",
    "SM_MODEL_DIR": "/opt/ml/model",
    "SAGEMAKER_TRAINING_MODULE": "sagemaker_xgboost_container.training:main",
    "SAGEMAKER_SERVING_MODULE": "sagemaker_xgboost_container.serving:main",
    "LD_LIBRARY_PATH": "/opt/venv/lib/python3.12/site-packages/nvidia/nccl/lib",
    "HOME": "/root",
}

IMAGES = {IMAGE: (IMAGE_ENV, "sagemaker_sklearn_container"), XGBOOST: (XGBOOST_ENV, "sagemaker_xgboost_container")}
"""Image name -> (its ENV block, its glue package under glue/)."""


def image_env(runtime: Path) -> dict[str, str]:
    """The ENV block of the image a runtime folder (``<BUILD>/<image>-<hash>``) was built for."""
    for name, (env, _) in IMAGES.items():
        if runtime.name.startswith(name + "-"):
            return env
    return IMAGE_ENV


class Unavailable(RuntimeError):
    """This machine cannot reproduce the runtime (no namespaces, no Python 3.12, no apt); the message says why."""


def _digest(image: str = IMAGE) -> str:
    h = hashlib.sha256(RECIPE.encode())
    glue = GLUE / IMAGES[image][1]
    for path in sorted([*(HERE / "images" / image).glob("*"), *glue.rglob("*.py")]):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def unavailable_reason() -> str | None:
    """Why this machine cannot run the tier, or None."""
    if sys.platform != "linux":
        return f"needs Linux namespaces (this is {sys.platform})"
    if not Path(PYTHON).is_file():
        return f"needs the image's Python 3.12 at {PYTHON} (set MLOPS_IMAGE_PYTHON)"
    for tool in ("unshare", "mount"):
        if shutil.which(tool) is None:
            return f"needs util-linux's {tool}"
    probe = subprocess.run(["unshare", "-m", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create mount and network namespaces (unshare -m -n: {probe.stderr.strip() or probe.returncode})"
    return None


def _run(cmd: list[str], **kw) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


def _patch_decoder(site: Path) -> None:
    # The image replaces sagemaker_inference/decoder.py with its CWE-502 fix: .npy payloads load without pickle.
    path = site / "sagemaker_inference" / "decoder.py"
    text = path.read_text()
    if "allow_pickle=False" not in text:
        unsafe = "np.load(stream, allow_pickle=True)" if "allow_pickle=True" in text else "np.load(stream)"
        if unsafe not in text:
            raise RuntimeError(f"{path}: the image's decoder patch no longer applies (no {unsafe})")
        path.write_text(text.replace(unsafe, "np.load(stream, allow_pickle=False)"))


def _fix_mapping(site: Path) -> None:
    # The image's sed: sagemaker-containers uses collections.Mapping, gone since Python 3.10.
    path = site / "sagemaker_containers" / "_mapping.py"
    path.write_text(path.read_text().replace("collections.Mapping", "collections.abc.Mapping"))


def _install_glue(venv: Path, package: str = "sagemaker_sklearn_container") -> None:
    site = venv / SITE
    shutil.copytree(GLUE / package, site / package, dirs_exist_ok=True)
    serve = venv / "bin" / "serve"  # the glue's console script, as pip would write it
    serve.write_text(
        f"#!/opt/venv/bin/python\nimport sys\nfrom {package}.serving import serving_entrypoint\n"
        "sys.exit(serving_entrypoint())\n"
    )
    serve.chmod(0o755)


def _build_nginx(root: Path) -> None:
    debs = root.parent / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    download = subprocess.run(["apt-get", "download", *NGINX_PACKAGES], cwd=debs, capture_output=True, text=True)
    if download.returncode != 0:  # a fresh machine has no package lists yet
        _run(["apt-get", "update", "-qq"])
        _run(["apt-get", "download", *NGINX_PACKAGES], cwd=debs)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(root)])


def bytecode_enabled() -> bool:
    """Whether containers read the runtime folder's bytecode cache (``MLOPS_RUNTIME_BYTECODE``, on unless ``0``)."""
    return os.environ.get("MLOPS_RUNTIME_BYTECODE", "1") != "0"


def _compile(home: Path) -> None:
    """Compile the environment's site-packages and the standard library into ``home/pycache`` as seen at /opt/venv (the paths and source
    timestamps the containers' imports check the cache against)."""
    cache = home / PYCACHE
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir()
    script = (
        "mount -t tmpfs tmpfs /opt && mkdir /opt/venv && mount --bind \"$1\" /opt/venv && "
        # The standard library too: under a cache prefix Python looks for bytecode there only, not in __pycache__.
        f"PYTHONPYCACHEPREFIX=\"$2\" /opt/venv/bin/python -m compileall -q -j 0 -x \"$4\" \"$3\" /opt/venv/{SITE}; "
        # compileall exits 1 when any file does not compile (test data and Python 2 leftovers in some packages):
        # those import from source as before; only the mounts must have worked.
        "mountpoint -q /opt/venv"
    )
    stdlib = subprocess.run([PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    skip = f"^{re.escape(stdlib)}/(test|idlelib|site-packages)/"  # the interpreter's tests, IDLE and own packages
    _run(["unshare", "-m", "bash", "-c", script, "compile", str(home / "venv"), str(cache), stdlib, skip],
         env={k: v for k, v in os.environ.items() if k not in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")})
    (cache / ".complete").write_text("")


def build(image: str = IMAGE) -> Path:
    """The runtime folder of ``image`` (``venv/`` for /opt/venv, ``nginx/`` with Debian's nginx, ``pycache/``), built
    once per lock hash."""
    reason = unavailable_reason()
    if reason:
        raise Unavailable(reason)
    home = BUILD / f"{image}-{_digest(image)}"
    done, compiled = home / ".complete", home / PYCACHE / ".complete"
    if done.is_file() and compiled.is_file():
        return home
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test processes must not build the same folder at once
        if done.is_file():
            if not compiled.is_file():  # a folder built before the cache existed
                _compile(home)
            return home
        started = time.monotonic()
        shutil.rmtree(home, ignore_errors=True)
        venv, tools = home / "venv", BUILD / "tools"
        venv.mkdir(parents=True)
        if not (tools / "bin" / "uv").is_file():
            _run([PYTHON, "-m", "pip", "install", "--quiet", "--target", str(tools), UV])
        project = home / "project"
        shutil.copytree(HERE / "images" / image, project)
        env = {
            **os.environ,
            "UV_PROJECT_ENVIRONMENT": "/opt/venv",
            "UV_CACHE_DIR": str(BUILD / "uv-cache"),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_LINK_MODE": "copy",
            "PYTHONPATH": str(tools),
        }
        # Built at its real path, as in the image: console scripts' shebangs then read /opt/venv/bin/python.
        script = (
            "set -e; mount -t tmpfs tmpfs /opt; mkdir /opt/venv; mount --bind \"$1\" /opt/venv; "
            f"\"$2\" -m venv /opt/venv; cd \"$3\"; \"$4\" sync --frozen --no-dev --no-install-project --python /opt/venv/bin/python"
        )
        _run(
            ["unshare", "-m", "bash", "-c", script, "build", str(venv), PYTHON, str(project), str(tools / "bin" / "uv")],
            env=env,
        )
        _patch_decoder(venv / SITE)
        _fix_mapping(venv / SITE)
        _install_glue(venv, IMAGES[image][1])
        _build_nginx(home / "nginx")
        _compile(home)
        (home / "build-seconds").write_text(f"{time.monotonic() - started:.1f}\n")
        done.write_text("")
    return home


if __name__ == "__main__":
    t = time.monotonic()
    print(build(*sys.argv[1:2]), f"{time.monotonic() - t:.1f}s")

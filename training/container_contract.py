"""How the SageMaker containers are started: the serving environment of every model, the serving entry point and the
training job's entry point. Shared by the components that deploy models and jobs (the bootstrap model, the model
packages the CT flow registers, the training job) and the code in the containers; standard library only.
"""

from __future__ import annotations

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

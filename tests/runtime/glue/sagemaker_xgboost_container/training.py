"""SAGEMAKER_TRAINING_MODULE=sagemaker_xgboost_container.training:main, as the image runs it (script mode)."""

import sys

import sagemaker_containers.beta.framework as framework


def train(training_environment):
    if training_environment.user_entry_point is None:
        raise SystemExit("algorithm mode (the built-in XGBoost algorithm, no sagemaker_program) is not reproduced by this test tier")
    # The image runs the user entry point from the submit directory with sagemaker-containers' module runner:
    # hyperparameters as `--name value` arguments, SM_* variables, errors not captured (they reach the job's log).
    framework.modules.run_module(
        training_environment.module_dir,
        training_environment.to_cmd_args(),
        training_environment.to_env_vars(),
        training_environment.module_name,
        capture_error=False,
    )


def main():
    train(framework.training_env())
    sys.exit(0)

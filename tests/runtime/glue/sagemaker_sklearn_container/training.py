"""SAGEMAKER_TRAINING_MODULE=sagemaker_sklearn_container.training:main, as the image runs it."""

from sagemaker_training import entry_point, environment, runner


def main():
    env = environment.Environment()
    # The image's glue runs the user entry point (SAGEMAKER_PROGRAM from the submit directory) as a process,
    # with the hyperparameters as `--name value` arguments and SM_* variables.
    entry_point.run(
        uri=env.module_dir,
        user_entry_point=env.user_entry_point,
        args=env.to_cmd_args(),
        env_vars=env.to_env_vars(),
        runner_type=runner.ProcessRunnerType,
    )

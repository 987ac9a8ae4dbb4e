"""A complete PipelineSpec for the CT-flow tests (unit, botocore and LocalStack), one place for its values."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from components.pipeline.spec import JobResources, PipelineSpec, RetryPolicy, state_machine_name
from training.contract import METRIC_DEFINITIONS, EvaluationRule, Hyperparameters

ACCOUNT = "000000000000"
REGION = "us-east-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
CODE_SHA = "a" * 64
# Fast enough for LocalStack scenarios: one-second retries and polls.
FAST = RetryPolicy(interval_seconds=1, max_attempts=4, backoff_rate=1.5, max_delay_seconds=2)


def make_spec(**overrides: Any) -> PipelineSpec:
    spec = PipelineSpec(
        model="churn",
        stack="itest",
        partition="aws",
        region=REGION,
        account_id=ACCOUNT,
        state_machine_name=state_machine_name("mlops", "itest", "churn"),
        job_prefix="mlops-itest-churn",
        endpoint_name="mlops-itest-churn",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/mlops-itest-churn-sagemaker",
        model_package_group="mlops-itest-churn",
        data_bucket="data-b",
        models_bucket="models-b",
        capture_bucket="capture-b",
        kms_key_arn=KEY,
        topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:mlops-itest-notifications",
        code_uri=f"s3://models-b/code/{CODE_SHA}/sourcedir.tar.gz",
        code_sha256=CODE_SHA,
        contract_key="churn/contract/" + "b" * 64 + ".json",
        training_image="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
        inference_image="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
        training=JobResources("ml.m5.xlarge", 1, 30, 3600),
        processing=JobResources("ml.m5.large", 1, 30, 1800),
        hyperparameters=Hyperparameters(max_iter=300),
        evaluation_args=tuple(EvaluationRule(minimum=0.7, max_regression=0.02).to_cli_args()),
        metric_definitions=tuple(METRIC_DEFINITIONS),
        tags={"mlops:model": "churn", "mlops:stack": "itest"},
    )
    return replace(spec, **overrides)


def fast_spec(**overrides: Any) -> PipelineSpec:
    """The spec the LocalStack scenarios deploy: same flow, second-long waits and retries."""
    fast = dict(settle_seconds=3, deploy_poll_seconds=1, deploy_timeout_seconds=600, guard_poll_seconds=1, guard_max_polls=3,
                service_retry=FAST, capacity_retry=FAST, aux_retry=FAST)
    return make_spec(**{**fast, **overrides})


def model_code(**overrides: Any):
    """A model's own code (issue 14): its package, entry points and hyperparameters."""
    from components.pipeline.spec import ModelCode

    code = ModelCode(code_uri=f"s3://models-b/code/{'c' * 64}/sourcedir.tar.gz", code_sha256="c" * 64, train="train.py",
                     hyperparameters={"num_round": "200", "eta": "0.1"}, preprocess="preprocess.py", inference="inference.py")
    return replace(code, **overrides)


def own_code_variants() -> dict[str, dict[str, Any]]:
    """Spec overrides of the flow of a model's own code: with preprocess and the platform's judge; its own evaluate in
    its own container; without preprocess; with the generic gate."""
    from components.pipeline.spec import Gate

    xgb = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"
    own = "111122223333.dkr.ecr.us-east-1.amazonaws.com/team/ranker:1"
    gate = Gate("rmse", "lower", 20.0)
    common = {"platform_image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
              "metrics": ("rmse",), "gate": gate}
    return {
        "own-preprocess-judged": {**common, "training_image": xgb, "inference_image": xgb, "model_code": model_code()},
        "own-container-evaluate": {**common, "training_image": own, "inference_image": own, "approval": "manual",
                                   "model_code": model_code(preprocess=None, evaluate="evaluate.py", own_image=True)},
        "own-no-preprocess": {**common, "training_image": xgb, "inference_image": xgb, "model_code": model_code(preprocess=None)},
    }

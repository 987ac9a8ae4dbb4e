"""HostedModel: one model's registry and role, endpoint, CT flow, drift and quality monitors under one parent, built
from a StackContext and a platform reference; names come from components.naming (the CLI finds them the same way)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import only

from components.code.package import CodePackage, CodePackageArgs
from components.context import StackContext
from components.model.hosted import HostedModel, HostedModelArgs, ModelImages, QualityStandard
from components.monitoring.drift import DriftCode, DriftCodeArgs
from components.monitoring.quality_config import QualityConfig
from components.naming import ModelNames
from components.platform.platform import Platform, PlatformArgs
from components.serving.config import EndpointConfig
from training.contract import DataContract

TRAINING = Path(__file__).resolve().parents[2] / "training"
CONTRACT = DataContract.model_validate_json((TRAINING / "sample" / "contract.json").read_text()).model_dump_json()
IMAGES = ModelImages("img-train:1", "img-serve:1")
CTX = StackContext(prefix="acme", stack="t", environment="dev", region="us-east-1", account_id="123456789012")
PIECES = {"mlops:model:Model", "mlops:serving:ModelEndpoint", "mlops:pipeline:TrainingPipeline", "mlops:monitoring:DriftMonitor"}


def program(tmp_path: Path, **overrides):
    def run():
        platform = Platform("platform", PlatformArgs(context=CTX, models=("churn",)))
        code_args = CodePackageArgs(source_dir=TRAINING, bucket_name=platform.models_bucket.bucket_name,
                                    kms_key_arn=platform.kms_key_arn, build_dir=tmp_path)
        code = CodePackage("code", code_args)
        args = dict(context=CTX, platform=platform.ref, code=code, images=IMAGES, contract_json=CONTRACT,
                    source_dir=TRAINING, build_dir=tmp_path)
        if "monitor_code" not in overrides:
            args["monitor_code"] = DriftCode("drift-code", DriftCodeArgs(**vars(code_args)))
        HostedModel("churn", HostedModelArgs(**{**args, **overrides}))

    return run


def test_the_model_is_one_parent_of_its_pieces(register, tmp_path):
    m = register(program(tmp_path), stack="t")
    hosted = only(m.of_type("mlops:model:HostedModel"))
    children = {r["type"] for r in m.resources if r["parent"] == hosted["urn"]}
    assert children == PIECES
    # Bucket grants are children of the role they extend (the grantee), none of a bucket.
    roles = {r["urn"] for r in m.of_type("aws:iam/role:Role")}
    buckets = {r["urn"] for r in m.of_type("mlops:storage:SecureBucket")}
    policies = m.of_type("aws:iam/rolePolicy:RolePolicy")
    grants = [p for p in policies if p["parent"] in roles]
    assert len(grants) >= 10 and not [p for p in policies if p["parent"] in buckets]


def test_names_come_from_the_context(register, tmp_path):
    m = register(program(tmp_path), stack="t")
    n = ModelNames("acme", "t", "churn")
    assert only(m.of_type("aws:sfn/stateMachine:StateMachine"))["inputs"]["name"] == n.state_machine
    assert only(m.of_type("aws:sagemaker/endpoint:Endpoint"))["inputs"]["name"] == n.endpoint
    assert only(m.of_type("aws:sagemaker/modelPackageGroup:ModelPackageGroup"))["inputs"]["modelPackageGroupName"] == n.registry_group
    roles = {r["inputs"]["name"] for r in m.of_type("aws:iam/role:Role")}
    assert {n.role, n.flow_role, n.monitor("drift"), n.monitor_schedule_role("drift")} <= roles
    groups = {r["inputs"]["name"] for r in m.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert {n.state_machine_log_group, n.monitor_log_group("drift")} <= groups
    assert all(r["inputs"]["tags"]["mlops:model"] == "churn" for r in m.of_type("aws:iam/role:Role"))


def test_drift_without_capture_is_dropped_and_said(register, tmp_path):
    m = register(program(tmp_path, endpoint=EndpointConfig.model_validate({"capture": {"enabled": False}})), stack="t")
    assert m.of_type("mlops:monitoring:DriftMonitor") == []
    assert any("drift monitoring is off because its endpoint does not capture requests" in s for s in m.messages)


def test_without_an_endpoint_runs_end_after_registration(register, tmp_path):
    m = register(program(tmp_path, endpoint=None), stack="t")
    assert m.of_type("mlops:serving:ModelEndpoint") == [] and m.of_type("mlops:monitoring:DriftMonitor") == []
    assert len(m.of_type("mlops:pipeline:TrainingPipeline")) == 1


def test_rejects_quality_without_capture_before_registering_anything(register, tmp_path):
    quality = QualityStandard(QualityConfig(), "binary", "roc_auc", 0.7, "higher")
    with pytest.raises(Exception, match="quality monitoring joins captured predictions"):
        register(program(tmp_path, endpoint=None, quality=quality), stack="t")


def test_without_a_shared_monitor_package_the_model_makes_its_own(register, tmp_path):
    m = register(program(tmp_path, monitor_code=None), stack="t")
    hosted = only(m.of_type("mlops:model:HostedModel"))
    assert only(m.of_type("mlops:monitoring:DriftCode"))["parent"] == hosted["urn"]
    assert len(m.of_type("mlops:monitoring:DriftMonitor")) == 1


def test_job_prefix_fits_sagemaker_names_for_any_model_name():
    n = ModelNames("a-long-prefix", "a-long-stack-name", "a-very-long-model-name")
    assert len(n.job_prefix) <= 32 and n.job_prefix.startswith("a-long-prefix-")


def test_the_shipped_program_shows_one_hosted_model_per_model(manifests):
    for m in manifests.values():
        hosted = {r["name"]: r["urn"] for r in m.of_type("mlops:model:HostedModel")}
        assert hosted and set(hosted) == set(m.outputs["models"])
        for r in m.resources:
            if r["type"] in PIECES:
                assert r["parent"] == hosted[r["name"].split("-", 1)[1]], r["urn"]
                assert r["aliases"], "each piece answers to its old place at the stack's root"


def test_moving_a_models_pieces_under_it_keeps_every_identity_under_the_engines_urn_scheme(register, tmp_path, monkeypatch):
    """The mock monitor qualifies a URN with its direct parent's type only; the engine uses every ancestor's, so
    moving ``Model`` and ``TrainingPipeline`` under the HostedModel changes their children's URNs too. Under the
    engine's scheme, every resource of the old layout (the pieces at the stack's root) is matched through an alias:
    nothing is deleted or replaced."""
    from components.model.registry import Model, ModelArgs
    from components.pipeline.config import PipelineConfig
    from components.pipeline.spec import JobResources
    from components.pipeline.pipeline import TrainingPipeline, TrainingPipelineArgs
    from infra.review.diff import diff
    from infra.review.synth import RecordingMonitor
    from pulumi.runtime.mocks import get_project, get_stack
    from training.contract import METRIC_DEFINITIONS

    def engine_urn(self, parent: str, type_: str, name: str) -> str:
        if parent:
            chain = parent.split("::")[2]
            if chain != "pulumi:pulumi:Stack":
                type_ = f"{chain.removeprefix('pulumi:pulumi:Stack$')}${type_}"
        return f"urn:pulumi:{get_stack()}::{get_project()}::{type_}::{name}"

    monkeypatch.setattr(RecordingMonitor, "make_urn", engine_urn)

    def old_layout():
        platform = Platform("platform", PlatformArgs(context=CTX, models=("churn",)))
        code = CodePackage("code", CodePackageArgs(source_dir=TRAINING, bucket_name=platform.models_bucket.bucket_name,
                                                   kms_key_arn=platform.kms_key_arn, build_dir=tmp_path))
        model = Model("model-churn", ModelArgs(model="churn", context=CTX, platform=platform.ref,
                                               image_uris=[IMAGES.training, IMAGES.inference], code_prefix=code.prefix))
        TrainingPipeline("pipeline-churn", TrainingPipelineArgs(
            model="churn", context=CTX, platform=platform.ref, config=PipelineConfig(),
            training=JobResources("ml.m5.large", 1, 30, 3600),  # HostedModelArgs' defaults
            contract_json=CONTRACT, role_arn=model.role_arn, model_package_group_name=model.model_package_group_name,
            code_uri=code.s3_uri, code_sha256=code.sha256, training_image=IMAGES.training, inference_image=IMAGES.inference,
            metric_definitions=tuple(METRIC_DEFINITIONS),
        ))

    def new_layout():
        platform = Platform("platform", PlatformArgs(context=CTX, models=("churn",)))
        code = CodePackage("code", CodePackageArgs(source_dir=TRAINING, bucket_name=platform.models_bucket.bucket_name,
                                                   kms_key_arn=platform.kms_key_arn, build_dir=tmp_path))
        HostedModel("churn", HostedModelArgs(context=CTX, platform=platform.ref, code=code, images=IMAGES, contract_json=CONTRACT,
                                             source_dir=TRAINING, build_dir=tmp_path, endpoint=None, drift=None))

    old, new = register(old_layout, stack="t").to_json(), register(new_layout, stack="t").to_json()
    moved = [r for r in new["resources"] if r["custom"] and "HostedModel$" in r["urn"]]
    assert moved and all(r["urn"] not in {o["urn"] for o in old["resources"]} for r in moved), "the scheme moves the grandchildren"
    report = diff(old, new)
    assert report.of_kind("delete") == report.of_kind("replace") == report.of_kind("add") == []
    assert report.changes and all(any("with an alias" in why for why in c.reasons) for c in report.changes)

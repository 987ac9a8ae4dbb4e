"""examples/: each is a real Pulumi project, synthesized offline (``mlops synth --program``) under the recording
mocks; the tests assert on what each creates, run the stack's rules on it, and diff it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import only, policy
from typer.testing import CliRunner

from infra.cli.app import app
from infra.review.diff import diff
from infra.review.rules import evaluate
from infra.review.synth import Manifest, ProgramError, mermaid, synth_program

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OWNER_BUCKET = "mlops-dev-{}-123456789012-us-east-1"


@pytest.fixture(scope="module")
def minimal() -> Manifest:
    return synth_program(EXAMPLES / "minimal", "dev")


@pytest.fixture(scope="module")
def attached() -> Manifest:
    return synth_program(EXAMPLES / "attach-model", "dev")


def test_minimal_is_a_short_complete_program():
    source = (EXAMPLES / "minimal" / "__main__.py").read_text().splitlines()
    assert len(source) <= 32
    assert (EXAMPLES / "minimal" / "Pulumi.yaml").exists() and (EXAMPLES / "minimal" / "Pulumi.dev.yaml").exists()


def test_minimal_creates_a_platform_and_one_model(minimal):
    assert minimal.project == "mlops-minimal"
    assert len(minimal.of_type("mlops:platform:Platform")) == 1
    hosted = only(minimal.of_type("mlops:model:HostedModel"))
    assert hosted["name"] == "churn"
    kids = {r["type"] for r in minimal.resources if r["parent"] == hosted["urn"]}
    assert {"mlops:model:Model", "mlops:serving:ModelEndpoint", "mlops:pipeline:TrainingPipeline", "mlops:monitoring:DriftMonitor"} <= kids
    assert only(minimal.of_type("aws:sagemaker/endpoint:Endpoint"))["inputs"]["name"] == "acme-dev-churn"
    assert len(minimal.of_type("aws:s3/bucket:Bucket")) == 4
    assert minimal.outputs["endpoint_name"] == "acme-dev-churn"


@pytest.mark.parametrize("example", ["minimal", "attached"])
def test_examples_pass_the_stacks_rules(example, request):
    manifest = request.getfixturevalue(example)
    assert evaluate(manifest.resources) == []
    assert "flowchart" in mermaid(manifest)


def test_attach_model_creates_no_platform_and_uses_the_owners_by_name(attached):
    owned = {"aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:sns/topic:Topic", "mlops:platform:Platform", "aws:iam/policy:Policy"}
    assert not [r for r in attached.resources if r["type"] in owned]
    only(attached.of_type("mlops:model:HostedModel"))
    roles = {r["urn"] for r in attached.of_type("aws:iam/role:Role")}
    grants = [p for p in attached.of_type("aws:iam/rolePolicy:RolePolicy") if p["parent"] in roles]
    resources = {s["Resource"] if isinstance(s["Resource"], str) else s["Resource"][0] for p in grants for s in policy(p)["Statement"]}
    assert f"arn:aws:s3:::{OWNER_BUCKET.format('data')}/fraud/train/*" in resources
    assert f"arn:aws:s3:::{OWNER_BUCKET.format('capture')}/fraud/*" in resources
    # The model's roles carry the owner's permissions boundary; the code package lands in the owner's models bucket.
    boundary = "arn:aws:iam::123456789012:policy/mlops-dev-boundary"
    assert {r["inputs"].get("permissionsBoundary") for r in attached.of_type("aws:iam/role:Role")} == {boundary}
    code = only([o for o in attached.of_type("aws:s3/bucketObjectv2:BucketObjectv2") if o["name"] == "code-sourcedir"])
    assert code["inputs"]["key"].startswith("fraud/code/")
    assert code["inputs"]["bucket"] == OWNER_BUCKET.format("models")
    definition = json.loads(only(attached.of_type("aws:sfn/stateMachine:StateMachine"))["inputs"]["definition"])
    assert OWNER_BUCKET.format("data") in json.dumps(definition)


def test_synth_program_through_the_cli_writes_a_manifest_mlops_diff_reads(tmp_path, minimal):
    out = tmp_path / "minimal.json"
    result = CliRunner().invoke(app, ["synth", "--program", str(EXAMPLES / "minimal"), "--stack", "dev", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "mlops:model:HostedModel" in result.output
    doc = json.loads(out.read_text())
    assert diff(minimal.to_json(), doc).changes == []
    checked = CliRunner().invoke(app, ["check", "--manifest", str(out)])
    assert checked.exit_code == 0, checked.output


def test_rejects_a_program_directory_without_the_stack_file(tmp_path):
    result = CliRunner().invoke(app, ["synth", "--program", str(EXAMPLES / "minimal"), "--stack", "prod"])
    assert result.exit_code == 2
    assert "no stack file Pulumi.prod.yaml" in result.output and "Traceback" not in result.output


def test_rejects_a_programs_own_mistake_with_where_and_what(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: broken\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  aws:region: us-east-1\n")
    (tmp_path / "__main__.py").write_text(
        "from components import StackContext, PlatformArgs, Platform\n"
        "Platform('p', PlatformArgs(context=StackContext(prefix='a', stack='dev', environment='dev', region='us-east-1',\n"
        "    account_id='1'), bogus=1))\n"
    )
    with pytest.raises(ProgramError, match=r"__main__.py:2: TypeError: .*bogus"):
        synth_program(tmp_path, "dev")


def test_the_shipped_program_synthesized_as_a_program_directory_is_the_same(manifests):
    """``--program`` is the general path: the repository root (main: infra/, stackConfigDir: stacks) gives the
    same manifest as ``mlops synth --stack``."""
    root = EXAMPLES.parent
    via_program = synth_program(root, "dev")
    assert via_program.project == manifests["dev"].project
    assert diff(manifests["dev"].to_json(), via_program.to_json()).changes == []
    by_urn = lambda m: sorted(m.to_json()["resources"], key=lambda r: r["urn"])  # noqa: E731 (registration order is async)
    assert by_urn(via_program) == by_urn(manifests["dev"])

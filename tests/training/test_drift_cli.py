"""`mlops drift` through the real console script, against the baseline that training/train.py wrote."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from training.capture import capture_line
from training.sample_data import generate

MLOPS = str(Path(sys.executable).with_name("mlops"))
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "region", "autopay"]


def mlops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MLOPS, *args], capture_output=True, text=True, timeout=120)


def write_capture(directory: Path, frame, hour: str = "12") -> Path:
    path = directory / "primary" / "2026" / "11" / "28" / hour / "capture.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = (",".join("" if isinstance(v, float) and np.isnan(v) else str(v) for v in r) for r in frame[FEATURES].itertuples(index=False))
    path.write_text("".join(capture_line(r) + "\n" for r in rows))
    return path


def test_no_drift_exits_0_and_prints_the_table(trained, tmp_path):
    write_capture(tmp_path / "cap", generate(1500, seed=40))
    run = mlops("drift", "--baseline", str(trained.model_dir / "baseline.json"), "--current", str(tmp_path / "cap"))
    assert run.returncode == 0, run.stderr
    assert "no drift: 1500 records scored from 1 file(s), 0 malformed" in run.stdout
    assert "monthly_charges" in run.stdout


def test_drift_exits_1_and_the_json_report_names_the_feature(trained, tmp_path):
    write_capture(tmp_path / "cap", generate(1000, seed=41, drift={"shift": {"monthly_charges": 1.5}}), hour="12")
    write_capture(tmp_path / "cap", generate(1000, seed=42, drift={"shift": {"monthly_charges": 1.5}}), hour="13")
    with (tmp_path / "cap" / "primary" / "2026" / "11" / "28" / "13" / "capture.jsonl").open("a") as f:
        f.write("{truncated\n")
    run = mlops("drift", "--baseline", str(trained.model_dir / "baseline.json"), "--current", str(tmp_path / "cap"), "--json")
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["status"] == "drift" and report["drifted_features"] == ["monthly_charges"]
    assert report["files"] == 2 and report["records"] == {"scored": 2000, "malformed": 1, "malformed_by_reason": {"bad_json": 1}}


def test_a_model_archive_is_a_baseline_too(trained, tmp_path):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for file in trained.model_dir.iterdir():
            tar.add(file, arcname=file.name)
    capture = write_capture(tmp_path / "cap", generate(500, seed=43))
    run = mlops("drift", "--baseline", str(archive), "--current", str(capture), "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["baseline"] == str(archive)


def test_bad_input_exits_2_with_a_message_not_a_traceback(trained, tmp_path):
    missing = mlops("drift", "--baseline", str(tmp_path / "nope.json"), "--current", str(tmp_path))
    assert missing.returncode == 2 and "cannot read baseline" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "training.json").write_text((trained.model_dir / "training.json").read_text())
    wrong = mlops("drift", "--baseline", str(tmp_path / "training.json"), "--current", str(tmp_path))
    assert wrong.returncode == 2 and "not a baseline ('mlops-baseline/1' expected" in wrong.stderr
    empty = mlops("drift", "--baseline", str(trained.model_dir / "baseline.json"), "--current", str(tmp_path))
    assert empty.returncode == 2 and "no capture files (*.jsonl)" in empty.stderr

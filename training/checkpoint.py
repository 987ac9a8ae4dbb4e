"""Checkpoints for managed spot training: fit in stages, save each, and resume an interrupted job from the last.

With ``CheckpointConfig``, SageMaker syncs ``/opt/ml/checkpoints`` to S3 while the job runs and copies it back
when it restarts the job after a spot interruption. The classifier is boosted in stages of ``stage_size``
iterations (``warm_start``: each stage adds trees to the last); after each stage the fitted pipeline is saved
as ``stage-<iterations>.joblib`` beside a ``.json`` naming the run it belongs to (hyperparameters and a hash of
the training rows). A restarted job loads the newest stage of *its* run and boosts on from there, so it ends with
the model the uninterrupted job would have trained. Checkpoints of another run (other data or hyperparameters)
are ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

CONFIG_ENV = "SM_CHECKPOINT_CONFIG_FILE"  # the image sets it; SageMaker writes the file for a CheckpointConfig
MAX_STAGES = 10


def checkpoint_dir() -> Path | None:
    """The job's checkpoint folder when SageMaker gave it one (``CheckpointConfig``), else None."""
    config = Path(os.environ.get(CONFIG_ENV, "/opt/ml/input/config/checkpointconfig.json"))
    if not config.is_file():
        return None
    try:
        local = json.loads(config.read_text()).get("LocalPath") or "/opt/ml/checkpoints"
    except (OSError, json.JSONDecodeError):
        local = "/opt/ml/checkpoints"
    return Path(local)


def run_id(hyperparameters: dict, x: pd.DataFrame, y: np.ndarray) -> str:
    h = hashlib.sha256(json.dumps(hyperparameters, sort_keys=True, default=str).encode())
    h.update(pd.util.hash_pandas_object(x, index=False).to_numpy().tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()


def _latest(directory: Path, run: str) -> tuple[int, Path] | None:
    best = None
    for meta in directory.glob("stage-*.json"):
        try:
            info = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        model = meta.with_suffix(".joblib")
        if info.get("run") == run and model.is_file() and (best is None or info["iterations"] > best[0]):
            best = (int(info["iterations"]), model)
    return best


def fit_with_checkpoints(pipeline: Pipeline, x: pd.DataFrame, y: np.ndarray, directory: Path, hyperparameters: dict) -> Pipeline:
    """Fit ``pipeline`` (its last step a HistGradientBoosting model) in stages saved to ``directory``."""
    target = int(pipeline[-1].max_iter)
    stage = max(1, -(-target // MAX_STAGES))
    run = run_id(hyperparameters, x, y)
    directory.mkdir(parents=True, exist_ok=True)
    done = 0
    latest = _latest(directory, run)
    if latest is not None:
        done, path = latest
        pipeline = joblib.load(path)
        print(f"train: resumed from checkpoint at iteration {done} ({path.name})", flush=True)
    classifier = pipeline[-1]
    classifier.set_params(warm_start=True)
    while done < target:
        classifier.set_params(max_iter=min(target, done + stage))
        pipeline.fit(x, y)
        reached = int(classifier.n_iter_)
        stopped_early = reached < classifier.max_iter
        done = target if stopped_early else reached
        path = directory / f"stage-{reached:06d}.joblib"
        joblib.dump(pipeline, path)
        # The marker is written last: a job interrupted mid-write leaves a model no restart will trust.
        path.with_suffix(".json").write_text(json.dumps({"run": run, "iterations": reached if not stopped_early else target}))
        print(f"train: checkpoint at iteration {reached}", flush=True)
    classifier.set_params(warm_start=False)
    return pipeline

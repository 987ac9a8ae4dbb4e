"""Fixtures for the training steps: generated datasets and one model trained through ``training/train.py``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from training_steps import CONTRACT, Step, run_step

from training.contract import DataContract, load_contract
from training.sample_data import generate, write_csv


@pytest.fixture(scope="session")
def contract() -> DataContract:
    return load_contract(CONTRACT)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Training data as a SageMaker channel (a directory of two CSV files) and a holdout file."""
    root = tmp_path_factory.mktemp("data")
    frame = generate(1500, seed=1)
    write_csv(frame.iloc[:900], root / "train" / "part-0.csv")
    write_csv(frame.iloc[900:], root / "train" / "part-1.csv")
    write_csv(generate(500, seed=2), root / "test" / "holdout.csv")
    return root


@dataclass(frozen=True)
class Trained:
    step: Step
    model_dir: Path
    output_dir: Path


@pytest.fixture(scope="session")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """One model, trained by ``python training/train.py`` with the SageMaker environment and hyperparameters as
    ``--name value`` arguments, from a working directory that is not the repository."""
    root = tmp_path_factory.mktemp("train")
    env = {
        "SM_CHANNEL_TRAIN": str(data_dir / "train"),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DATA_DIR": str(root / "output"),
        "MLOPS_CONTRACT": str(CONTRACT),
    }
    step = run_step("train", ["--max_iter", "60", "--learning_rate", "0.1", "--max_depth", "4"], env, cwd=root, script=True)
    assert step.returncode == 0, step.stderr
    return Trained(step, root / "model", root / "output")

"""The container-faithful tier: fixtures that build the image's runtime and read jobs from the synthesized stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import image  # noqa: E402

from sm_agent import RUN, resolve, run_training_job  # noqa: E402

ROOT = image.ROOT


@pytest.fixture(scope="session")
def runtime() -> Path:
    """The image's runtime folder; skips (fails under CI=true) where this machine cannot reproduce it."""
    reason = image.unavailable_reason()
    if reason:
        message = f"container-faithful tier: {reason}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI must run this tier)", pytrace=False)
        pytest.skip(message)
    return image.build()


class Stack:
    """A synthesized stack as the tier needs it: task parameters and the objects Pulumi uploads."""

    def __init__(self, manifest: Any, workdir: Path, model: str = "churn"):
        self.manifest = manifest
        self.model = model
        machines = [m for m in manifest.of_type("aws:sfn/stateMachine:StateMachine") if f"::pipeline-{model}-" in m["urn"]]
        assert len(machines) == 1, [m["name"] for m in machines]
        self.definition = json.loads(machines[0]["inputs"]["definition"])
        self.objects: dict[str, Path] = {}
        workdir.mkdir(parents=True, exist_ok=True)
        for obj in manifest.of_type("aws:s3/bucketObjectv2:BucketObjectv2"):
            key, inputs = obj["inputs"]["key"], obj["inputs"]
            if "content" in inputs:
                path = workdir / key.rsplit("/", 1)[-1]
                path.write_text(inputs["content"])
            else:
                path = ROOT / inputs["source"]["path"]
            self.objects[key] = path

    def state(self, name: str) -> dict[str, Any]:
        return self.definition["States"][name]

    def parameters(self, name: str) -> dict[str, Any]:
        state = self.state(name)
        return state.get("Parameters", state.get("Arguments"))

    def s3(self, **extra: Path) -> dict[str, Path]:
        """Every ``s3://`` URI of a stack object (any bucket: the key is what names it), plus ``extra``."""

        class Objects(dict):
            def __missing__(inner, uri: str) -> Path:
                key = uri.split("/", 3)[3] if uri.startswith("s3://") and uri.count("/") >= 3 else uri
                if key in self.objects:
                    return self.objects[key]
                raise KeyError(uri)

            def __contains__(inner, uri: object) -> bool:
                try:
                    inner[uri]
                except KeyError:
                    return False
                return True

        return Objects(extra)

    def _model(self) -> dict[str, Any]:
        (model,) = [m for m in self.manifest.of_type("aws:sagemaker/model:Model") if f"::endpoint-{self.model}-" in m["urn"]]
        return model

    def model_environment(self) -> dict[str, str]:
        model = self._model()
        return model["inputs"]["primaryContainer"]["environment"]

    def bootstrap_archive(self) -> bytes:
        model = self._model()
        url = model["inputs"]["primaryContainer"]["modelDataUrl"]
        return self.objects[url.split("/", 3)[3]].read_bytes()


@pytest.fixture(scope="session")
def dev(manifests, tmp_path_factory) -> Stack:
    return Stack(manifests["dev"], tmp_path_factory.mktemp("dev-objects"))


@pytest.fixture(scope="session")
def staging(manifests, tmp_path_factory) -> Stack:
    """A stack with spot training, hence a CheckpointConfig."""
    return Stack(manifests["staging"], tmp_path_factory.mktemp("staging-objects"))


def sample(path: Path, rows: int, seed: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "training.sample_data", "--rows", str(rows), "--seed", str(seed), "--out", str(path / "part-0.csv")],
        check=True, cwd=ROOT, capture_output=True,
    )
    return path


def pack_model(model_dir: Path, dest: Path) -> Path:
    """model.tar.gz as SageMaker packs SM_MODEL_DIR after a training job."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    return dest


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> Path:
    return sample(tmp_path_factory.mktemp("train"), 600, 7)


@pytest.fixture(scope="session")
def trained(runtime, dev, data, tmp_path_factory):
    """The dev stack's Train task run once; its model archive and output data feed Evaluate and the endpoint."""
    params = resolve(dev.parameters("Train"), RUN)
    params["HyperParameters"]["max_iter"] = "30"  # small and quick: the tier proves the runtime, not the model
    uri = params["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    work = tmp_path_factory.mktemp("train-job")
    result = run_training_job(runtime, work, params, dev.s3(**{uri: data}))
    assert result.returncode == 0, result.logs()
    archive = pack_model(result.opt_ml / "model", work / "s3" / "model.tar.gz")
    return result, archive



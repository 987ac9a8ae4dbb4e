"""Code packaging: deterministic bytes, the expected layout, one object per content hash."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time

import pytest
from helpers import only

from components.code import package as code_package
from components.code.package import CodePackage, CodePackageArgs, build_sourcedir, write_package
from infra.config import PROJECT_ROOT

TRAINING = PROJECT_ROOT / "training"


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def fresh_build() -> bytes:
    """A build that cannot come from the per-process memo (that would make byte identity trivial)."""
    code_package._ENTRIES.clear()
    code_package._ARCHIVES.clear()
    return build_sourcedir(TRAINING)


def test_two_builds_are_byte_identical_even_after_touching_files(tmp_path):
    first = fresh_build()
    # New mtimes and a stray cache must not change the package.
    for p in TRAINING.rglob("*.py"):
        os.utime(p, (time.time() + 100, time.time() + 100))
    (TRAINING / "__pycache__").mkdir(exist_ok=True)
    (TRAINING / "__pycache__" / "junk.cpython-311.pyc").write_bytes(os.urandom(64))
    second = fresh_build()
    assert first == second
    assert write_package(TRAINING, tmp_path / "a")[1] == write_package(TRAINING, tmp_path / "b")[1] == hashlib.sha256(first).hexdigest()


def test_layout_is_what_script_mode_expects():
    names = set(members(build_sourcedir(TRAINING)))
    assert {"training/__init__.py", "training/train.py", "training/validate.py", "training/evaluate.py", "training/inference.py"} <= names
    assert "inference.py" in names and "training/requirements.txt" in names
    assert "requirements.txt" not in names, "a root requirements.txt would be pip-installed from the network"
    wheels = {n.split("/", 1)[1].split("-")[0].lower() for n in names if n.startswith("wheels/")}
    assert {"pandera", "pydantic", "pydantic_core", "typeguard"} <= wheels, "isolated jobs install from the shipped wheels"
    assert sum(n.startswith("wheels/pydantic_core-") for n in names) == 4, "one compiled wheel per vendored Python"
    assert not [n for n in names if n.startswith("training/sample/")], "sample data is not code"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    for info in members(build_sourcedir(TRAINING)).values():
        assert info.mtime == 0 and info.uid == 0 and info.uname == ""


def test_a_content_change_changes_the_hash(tmp_path):
    pkg = tmp_path / "training"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text("print(1)\n")
    before = hashlib.sha256(build_sourcedir(pkg)).hexdigest()
    (pkg / "train.py").write_text("print(2)\n")
    assert hashlib.sha256(build_sourcedir(pkg)).hexdigest() != before


def test_rejects_a_directory_that_is_not_a_package(tmp_path):
    with pytest.raises(ValueError, match="is not a Python package"):
        build_sourcedir(tmp_path)


def test_object_is_keyed_by_hash_kms_encrypted_and_retained(register, tmp_path):
    made = {}

    def program():
        made["code"] = CodePackage(
            "code",
            CodePackageArgs(source_dir=TRAINING, bucket_name="acme-models", kms_key_arn="arn:aws:kms:us-east-1:1:key/k", build_dir=tmp_path),
        )

    manifest = register(program)
    obj = only(manifest.of_type("aws:s3/bucketObjectv2:BucketObjectv2"))
    sha = hashlib.sha256(build_sourcedir(TRAINING)).hexdigest()
    assert obj["inputs"]["key"] == f"code/{sha}/sourcedir.tar.gz"
    assert obj["inputs"]["serverSideEncryption"] == "aws:kms" and obj["inputs"]["kmsKeyId"] == "arn:aws:kms:us-east-1:1:key/k"
    assert obj["retain_on_delete"] is True, "older code versions stay for the models trained with them"
    assert obj["inputs"]["source"]["asset"] == "file"
    assert (tmp_path / f"sourcedir-{sha}.tar.gz").read_bytes() == build_sourcedir(TRAINING)
    assert obj["parent"].endswith("mlops:code:CodePackage::code")

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


def test_artifacts_are_found_by_their_inputs_without_building(tmp_path):
    from components.code.package import cached_artifact, deterministic_targz, entries_digest

    entries = [("a.txt", b"a" * 1000), ("b/c.py", b"print(1)\n")]
    builds = []

    def build():
        builds.append(1)
        return deterministic_targz(entries)

    key = entries_digest(entries, "t.tar.gz")
    path, sha = cached_artifact(key, tmp_path, "t", ".tar.gz", build)
    assert builds == [1] and path.name == f"t-{sha}.tar.gz"
    # Another process (nothing memoized that matters): the index answers, nothing is built.
    assert cached_artifact(key, tmp_path, "t", ".tar.gz", build) == (path, sha) and builds == [1]
    # A truncated artifact is rebuilt, not uploaded.
    path.write_bytes(path.read_bytes()[:10])
    assert cached_artifact(key, tmp_path, "t", ".tar.gz", build)[1] == sha and builds == [1, 1]
    assert path.stat().st_size > 10
    # Changed content is another key, hence another artifact.
    changed = [("a.txt", b"a" * 999 + b"b"), ("b/c.py", b"print(1)\n")]
    assert entries_digest(changed, "t.tar.gz") != key
    assert entries_digest(list(reversed(entries)), "t.tar.gz") == key  # order-free, like the archive


def test_builds_and_the_wheel_cache_default_under_the_working_directory(tmp_path, monkeypatch):
    """Nothing is written beside the installed package: the defaults follow the working directory."""
    from components.code.paths import package_source, work_dir
    from components.serving.endpoint import ModelEndpointArgs

    seen = []
    monkeypatch.setattr(code_package, "vendored_wheels", lambda requirements, cache_root: seen.append(cache_root) or [])
    monkeypatch.chdir(tmp_path)
    code_package._ENTRIES.clear()
    code_package.sourcedir_entries(package_source("training"))
    assert seen == [tmp_path / ".mlops" / "wheels"]
    assert work_dir() == tmp_path / ".mlops"
    args = CodePackageArgs(source_dir=TRAINING, bucket_name="b", kms_key_arn="k")
    assert args.build_dir == tmp_path / ".mlops" / "build" and args.wheel_cache is None
    assert package_source("training") == TRAINING.resolve()
    assert {f.name: f.default_factory() for f in ModelEndpointArgs.__dataclass_fields__.values() if f.name in ("build_dir", "training_source")} == {
        "build_dir": tmp_path / ".mlops" / "build", "training_source": TRAINING.resolve()}
    code_package._ENTRIES.clear()


def test_rejects_a_source_that_is_not_a_package():
    from components.code.paths import package_source

    with pytest.raises(ValueError, match="'no_such_package_here' is not an importable package"):
        package_source("no_such_package_here")


def test_input_digests_are_found_by_stat_and_any_edit_is_a_miss(tmp_path, monkeypatch):
    """A synth that finds its inputs' digest by stat reads no file; an edit that keeps size and mtime (saved by
    rename, mtime set back) is still a miss, and a file changed within the racy window is not recorded."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("x = 1\n")
    reads = []
    real_read = code_package.read_entries
    monkeypatch.setattr(code_package, "read_entries", lambda files: reads.append(1) or real_read(files))
    clock = {"now": time.time_ns() + 10**12}  # long after every write: records are kept
    monkeypatch.setattr(code_package, "time", type("Clock", (), {"time_ns": staticmethod(lambda: clock["now"])}))
    extra = [("shim.py", b"from pkg import *\n")]

    def digest() -> str:
        return code_package.inputs_digest(code_package.sourcedir_files(pkg, tmp_path / "wheels"), extra, "t.tar.gz", tmp_path / "build")

    def truth() -> str:
        return code_package.entries_digest(real_read(code_package.sourcedir_files(pkg, tmp_path / "wheels")) + extra, "t.tar.gz")

    first = digest()
    assert first == truth() and reads == [1]
    assert digest() == first and reads == [1], "an unchanged package is found by stat, not read"

    before = (pkg / "a.py").stat()
    (tmp_path / "a.tmp").write_text("x = 2\n")  # same size, saved by rename as editors do, mtime set back
    os.replace(tmp_path / "a.tmp", pkg / "a.py")
    os.utime(pkg / "a.py", ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (pkg / "a.py").stat().st_size == before.st_size and (pkg / "a.py").stat().st_mtime_ns == before.st_mtime_ns
    assert digest() == truth() != first and reads == [1, 1]

    # Just changed (within the clock's granularity an in-place rewrite could keep every stat field): not recorded.
    (pkg / "a.py").write_text("x = 3\n")
    clock["now"] = (pkg / "a.py").stat().st_ctime_ns + 1
    assert digest() == truth() and digest() == truth() and reads == [1, 1, 1, 1]
    assert code_package.inputs_digest([], [("b", b"1")], "t.tar.gz", tmp_path / "build") != code_package.inputs_digest(
        [], [("b", b"2")], "t.tar.gz", tmp_path / "build"), "the in-memory entries are part of the key"


def test_stat_keyed_digests_are_the_content_digests_the_stack_names_artifacts_by(tmp_path):
    """The code package and the bootstrap model keep their keys (no replaced objects) whichever way the digest is found."""
    from components.serving.endpoint import bootstrap_model_entries, bootstrap_model_inputs

    files = code_package.sourcedir_files(TRAINING)
    for _ in range(2):  # computed, then again: from the record when the files are older than the racy window
        assert code_package.inputs_digest(files, code_package.SOURCEDIR_EXTRA, "sourcedir.tar.gz", tmp_path) == (
            code_package.entries_digest(code_package.sourcedir_entries(TRAINING), "sourcedir.tar.gz"))
        assert bootstrap_model_inputs(TRAINING, tmp_path) == code_package.entries_digest(bootstrap_model_entries(TRAINING), "model.tar.gz")

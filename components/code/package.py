"""The training code as a deterministic ``sourcedir.tar.gz``, stored in the models bucket under its hash.

Same content, same bytes, same hash: a code change shows in the synth manifest as a new key, and
every earlier package stays in the bucket (``retain_on_delete``) for lineage and rollback.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pulumi
import pulumi_aws as aws

from components.code.paths import package_source, work_dir  # noqa: F401  (re-exported)
from training.container_contract import SERVING_SHIM

# Not code: caches, compiled files, and the sample dataset (jobs get their data through channels).
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ipynb_checkpoints", "sample"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}

# The serving container imports SAGEMAKER_PROGRAM as a top-level module; this shim at the archive
# root re-exports the package's handlers (`training/inference.py` is not importable by that name).
INFERENCE_SHIM = SERVING_SHIM.encode()


def _included(path: Path, root: Path) -> bool:
    rel = path.relative_to(root)
    return path.is_file() and not (set(rel.parts) & EXCLUDED_PARTS) and path.suffix not in EXCLUDED_SUFFIXES


def _add(tar: tarfile.TarFile, arcname: str, data: bytes) -> None:
    info = tarfile.TarInfo(arcname)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # no timestamps, owners or permissions from the build machine: bytes depend on content only
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


# Jobs and the endpoint may run network-isolated: they cannot reach PyPI, so the package carries the
# wheels of training/requirements.txt (exact pins, beyond what the framework image has) and
# training/_deps.py installs them offline when the image lacks them. pydantic-core is compiled, so
# its wheel is fetched for each CPython the framework images use.
VENDOR_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
VENDOR_PLATFORM = "manylinux2014_x86_64"
WHEELS_DIR = "wheels"


class VendoringError(RuntimeError):
    """The wheels for the training package could not be fetched."""


def pip_download(requirements: list[str], dest: Path, *, platform: str, python_version: str) -> subprocess.CompletedProcess:
    """``pip download`` the binary wheels of ``requirements`` (pip arguments) for another platform and
    CPython into ``dest``, without dependencies."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--only-binary=:all:", "--platform", platform, "--implementation", "cp",
        "--python-version", python_version, "--dest", str(dest), *requirements,
    ]
    return subprocess.run(cmd, capture_output=True, text=True)


def _distribution(pin: str) -> str:
    """``xgboost==3.2.0`` -> ``xgboost`` (normalized as PEP 503 does)."""
    import re

    name = re.split(r"[\s;<>=!~\[@]", pin, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def vendored_wheels(requirements: Path, cache_root: Path, provided: tuple[str, ...] = ()) -> list[Path]:
    """The wheels pinned in ``requirements`` for every vendored Python, downloaded once into a cache.

    ``provided``: distributions the image already has (not vendored: their pins are met without the network)."""
    skip = {_distribution(p) for p in provided}
    pins = [ln.strip() for ln in requirements.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    pins = [p for p in pins if _distribution(p) not in skip]
    if not pins:
        return []
    cache = cache_root / hashlib.sha256("\n".join([*pins, VENDOR_PLATFORM, *VENDOR_PYTHONS]).encode()).hexdigest()[:16]
    if not (cache / ".complete").exists():
        cache.mkdir(parents=True, exist_ok=True)
        with exclusive(cache / ".lock"):  # two synths (or test workers) at once: one downloads, the other waits
            if not (cache / ".complete").exists():
                for version in VENDOR_PYTHONS:
                    proc = pip_download(pins, cache, platform=VENDOR_PLATFORM, python_version=version)
                    if proc.returncode != 0:
                        raise VendoringError(
                            f"could not download the training package's wheels for Python {version} from the package "
                            f"index (needed once, then cached in {cache_root}; a model's pins its image already has go "
                            f"in its image_packages and are not downloaded):\n{proc.stderr.strip()[-2000:]}"
                        )
                (cache / ".complete").write_text("\n".join(pins))
    return sorted(cache.glob("*.whl"))


@contextlib.contextmanager
def exclusive(lock: Path):
    """An advisory lock on ``lock`` (created if absent), held for the block."""
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fingerprint(source: Path) -> tuple:
    """Paths, sizes and mtimes of the package's files: unchanged files need not be read again."""
    return tuple(sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in source.rglob("*") if p.is_file()))


_ENTRIES: dict[tuple, tuple[tuple[str, bytes], ...]] = {}
_ARCHIVES: dict[tuple[tuple[str, bytes], ...], bytes] = {}
_DIGESTS: dict[bytes, str] = {}


def sourcedir_entries(source: Path, cache_root: Path | None = None) -> list[tuple[str, bytes]]:
    """See :func:`_sourcedir_entries`; memoized per process while the files are unchanged (synth builds
    the package once for the code object and once per model's bootstrap artifact)."""
    key = (str(source), str(cache_root), _fingerprint(source))
    if key not in _ENTRIES:
        _ENTRIES[key] = tuple(_sourcedir_entries(source, cache_root))
    return list(_ENTRIES[key])


MODEL_EXCLUDED_PARTS = EXCLUDED_PARTS | {"tests", ".venv", ".git"}


def model_sourcedir_files(source: Path, cache_root: Path, provided: tuple[str, ...] = ()) -> list[tuple[str, Path]]:
    """The files of a model's own code archive (archive name, path; read by :func:`read_entries`), as SageMaker script
    mode expects a ``source_dir``: its files at the root (entry points named relative to it), ``requirements.txt`` too
    (the framework toolkits install it at start; pins the image has are met offline), and ``wheels/`` with the pins
    the image lacks (not ``provided``), which ``PIP_FIND_LINKS``/``PIP_NO_INDEX`` in the jobs' environment let that
    install take offline."""
    if not source.is_dir():
        raise ValueError(f"{source} is not a directory; give the model's code directory")
    files = [
        (p.relative_to(source).as_posix(), p)
        for p in source.rglob("*")
        if p.is_file() and not (set(p.relative_to(source).parts) & MODEL_EXCLUDED_PARTS) and p.suffix not in EXCLUDED_SUFFIXES
    ]
    requirements = source / "requirements.txt"
    if requirements.is_file():
        files += [(f"{WHEELS_DIR}/{w.name}", w) for w in vendored_wheels(requirements, cache_root, provided)]
    return files


def read_entries(files: list[tuple[str, Path]]) -> list[tuple[str, bytes]]:
    return [(name, path.read_bytes()) for name, path in files]


# The archive's one entry that is not a file of the package: the serving shim.
SOURCEDIR_EXTRA = [("inference.py", INFERENCE_SHIM)]


def _sourcedir_entries(source: Path, cache_root: Path | None = None) -> list[tuple[str, bytes]]:
    """Archive entries of the package at ``source``, as SageMaker script mode expects them under /opt/ml/code:
    ``training/...`` (the package), ``wheels/`` (its pinned dependencies) and ``inference.py`` (serving).

    No root ``requirements.txt``: the containers would pip-install it from the network, which an
    isolated job does not have.
    """
    return read_entries(sourcedir_files(source, cache_root)) + SOURCEDIR_EXTRA


def sourcedir_files(source: Path, cache_root: Path | None = None) -> list[tuple[str, Path]]:
    """The files of :func:`_sourcedir_entries` (all but :data:`SOURCEDIR_EXTRA`), by archive name, not yet read."""
    if not (source / "__init__.py").is_file():
        raise ValueError(f"{source} is not a Python package (no __init__.py); point source_dir at training/")
    files = [(f"{source.name}/{p.relative_to(source).as_posix()}", p) for p in source.rglob("*") if _included(p, source)]
    requirements = source / "requirements.txt"
    if requirements.is_file():
        cache = cache_root or work_dir() / "wheels"
        files += [(f"{WHEELS_DIR}/{w.name}", w) for w in vendored_wheels(requirements, cache)]
    return files


def deterministic_targz(entries: list[tuple[str, bytes]]) -> bytes:
    """A .tar.gz whose bytes depend only on the entries' names and contents (memoized per process)."""
    key = tuple(sorted(entries))
    if key not in _ARCHIVES:
        _ARCHIVES[key] = _targz(key)
    return _ARCHIVES[key]


def _targz(entries: tuple[tuple[str, bytes], ...]) -> bytes:
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for arcname, data in entries:
                _add(tar, arcname, data)
    return raw.getvalue()


def deterministic_zip(entries: list[tuple[str, bytes]]) -> bytes:
    """A .zip whose bytes depend only on the entries' names and contents (Lambda deployment packages)."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))  # the earliest time zip can store
            info.external_attr = 0o644 << 16  # readable by Lambda's sandbox user, whatever the build machine's umask
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return raw.getvalue()


def build_sourcedir(source: Path, wheel_cache: Path | None = None) -> bytes:
    """The ``sourcedir.tar.gz`` bytes for the package at ``source`` (pinned wheels cached in ``wheel_cache``, default
    ``.mlops/wheels`` in the working directory)."""
    return deterministic_targz(sourcedir_entries(source, wheel_cache))


def _sha256(data: bytes) -> str:
    """sha256 of ``data``, once per process for the same bytes (bytes cache their hash: the memoized entries and
    archives that several artifacts share are not hashed again)."""
    if data not in _DIGESTS:
        _DIGESTS[data] = hashlib.sha256(data).hexdigest()
    return _DIGESTS[data]


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (a temp file per process, then a rename): concurrent builders never share
    a temp file and readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_artifact(data: bytes, build_dir: Path, stem: str, suffix: str = ".tar.gz") -> tuple[Path, str]:
    """Write ``data`` to ``build_dir/<stem>-<sha256><suffix>`` (once) and return its path and sha256."""
    digest = _sha256(data)
    path = build_dir / f"{stem}-{digest}{suffix}"
    if not path.exists() or path.stat().st_size != len(data):  # absent, or a damaged earlier write
        _replace(path, data)
    return path, digest


# The archive builders' own code is an input of every archive: a change to how bytes are written is a miss.
@functools.cache
def builder_digest() -> str:
    """A digest of this module's source (read once, when an artifact is first looked up, not on import)."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def entries_digest(entries: list[tuple[str, bytes]], kind: str) -> str:
    """A digest of an archive's inputs (names and contents' hashes, the archive kind and the builders' code):
    what the archive is looked up by before it is built."""
    h = hashlib.sha256(f"{kind}:{builder_digest()}".encode())
    for name, data in sorted(entries):
        h.update(json.dumps([name, _sha256(data)]).encode())
    return h.hexdigest()[:32]


# A file whose mtime or ctime is this close to now may still change within the clock's granularity without its
# stat changing (git's "racy" index entries): such inputs are not recorded, so the next process reads them again.
RACY_NS = 2_000_000_000


def inputs_digest(files: list[tuple[str, Path]], extra: list[tuple[str, bytes]], kind: str, build_dir: Path) -> str:
    """``entries_digest`` of the ``files`` (archive name, path) read, plus the in-memory ``extra`` entries, found
    without reading or hashing the files when an earlier process recorded it for the same stat of every file.

    As git's index does: the record (``build_dir/index/stat-<key>.json``) is keyed by each file's archive name,
    path, size, mtime, ctime, inode and device, the ``extra`` entries' contents, the kind and the builders' code.
    An edit changes ctime (which tools cannot set back) or, saved by rename, the inode; a file changed within
    :data:`RACY_NS` of now is not recorded. Reading and hashing the code package's ~11 MB costs every synth
    process ~30 ms otherwise.
    """
    stats, newest = [], 0
    for name, path in sorted(files):
        st = path.stat()
        stats.append([name, str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev])
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    # The stats as one more entry, named "" (no archive entry is): the key of everything but the files' bytes.
    key = entries_digest([*extra, ("", json.dumps(stats).encode())], f"stat:{kind}")
    record = build_dir / "index" / f"stat-{key}.json"
    try:
        digest = json.loads(record.read_text())["inputs"]
        if isinstance(digest, str):
            return digest
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = entries_digest(read_entries(files) + extra, kind)
    if time.time_ns() - newest >= RACY_NS:
        _replace(record, json.dumps({"inputs": digest}).encode())
    return digest


def cached_artifact(inputs: str, build_dir: Path, stem: str, suffix: str, build: Callable[[], bytes]) -> tuple[Path, str]:
    """The artifact built from ``inputs`` (a digest of everything its bytes depend on), found through
    ``build_dir/index/`` without building it when an earlier process did; else built by ``build`` and indexed.

    Building means tar + gzip -9 (or deflate) of ~10-30 MB: 0.3-0.6 CPU-s a stack pays in every process when the
    file is named only by a digest known after building. The index names the file and its sha256 and size; a
    missing or truncated file is rebuilt.
    """
    index = build_dir / "index" / f"{stem}-{inputs}.json"
    try:
        doc = json.loads(index.read_text())
        path = build_dir / doc["file"]
        if path.stat().st_size == doc["size"]:
            return path, doc["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    path, digest = write_artifact(build(), build_dir, stem, suffix)
    _replace(index, json.dumps({"file": path.name, "sha256": digest, "size": path.stat().st_size}).encode())
    return path, digest


def write_package(source: Path, build_dir: Path, wheel_cache: Path | None = None) -> tuple[Path, str]:
    """Build the code archive into ``build_dir`` (named by its hash) and return its path and sha256."""
    files = sourcedir_files(source, wheel_cache)
    return cached_artifact(inputs_digest(files, SOURCEDIR_EXTRA, "sourcedir.tar.gz", build_dir), build_dir, "sourcedir",
                           ".tar.gz", lambda: build_sourcedir(source, wheel_cache))


@dataclass(frozen=True)
class CodePackageArgs:
    source_dir: Path
    """The code directory to package (``training/`` for the built-in recipe)."""
    bucket_name: pulumi.Input[str]
    """The bucket the package is stored in (the models bucket)."""
    kms_key_arn: pulumi.Input[str]
    """The key the package object is encrypted with."""
    build_dir: Path = field(default_factory=lambda: work_dir() / "build")
    """Where the archive is written before upload (default ``.mlops/build`` in the working directory)."""
    prefix: str = "code"
    """Key prefix of the packages in the bucket. Default ``code``."""
    tags: dict[str, str] = field(default_factory=dict)
    """Only the ``mlops:*`` tags are kept: S3 objects take at most 10 tags."""
    model_code: bool = False
    """A model's own code (``source_dir`` contents at the archive root, see :func:`model_sourcedir_files`) rather
    than the platform's ``training`` package."""
    image_packages: tuple[str, ...] = ()
    """With ``model_code``: distributions of its requirements.txt the image already has (not vendored)."""
    wheel_cache: Path | None = None
    """Where the pinned wheels are cached (default ``.mlops/wheels`` in the working directory)."""


def stored_artifact(
    name: str,
    parent: pulumi.Resource,
    *,
    bucket_name: pulumi.Input[str],
    kms_key_arn: pulumi.Input[str],
    tags: dict[str, str],
    key: str,
    path: Path,
    sha256: str,
    content_type: str,
) -> aws.s3.BucketObjectv2:
    """One content-addressed build artifact in the models bucket: SSE-KMS, tagged with its hash, kept on
    delete (a new hash is a new key; the old object stays for what was built or deployed from it).

    ``BucketObjectv2`` is pulumi-aws 7's current object resource (``aws_s3_object``); ``BucketObject``
    is the legacy one. Its ``v2`` is part of the name, not a deprecated bucket sub-resource.
    """
    return aws.s3.BucketObjectv2(
        name,
        bucket=bucket_name,
        key=key,
        source=pulumi.FileAsset(str(path)),
        content_type=content_type,
        server_side_encryption="aws:kms",
        kms_key_id=kms_key_arn,
        # S3 objects take at most 10 tags: only the stack's own mlops:* tags are copied.
        tags={**{k: v for k, v in tags.items() if k.startswith("mlops:")}, "mlops:code-sha256": sha256},
        opts=pulumi.ResourceOptions(parent=parent, retain_on_delete=True),
    )


class CodePackage(pulumi.ComponentResource):
    """One S3 object per code version: ``s3://<models bucket>/<prefix>/<sha256>/sourcedir.tar.gz``."""

    sha256: str
    key: str
    s3_uri: pulumi.Output[str]

    def __init__(self, name: str, args: CodePackageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:code:CodePackage", name, None, opts)
        if args.model_code:
            cache = args.wheel_cache or work_dir() / "wheels"
            files = model_sourcedir_files(args.source_dir, cache, args.image_packages)
            path, self.sha256 = cached_artifact(inputs_digest(files, [], "sourcedir.tar.gz", args.build_dir), args.build_dir,
                                                "sourcedir", ".tar.gz", lambda: deterministic_targz(read_entries(files)))
        else:
            path, self.sha256 = write_package(args.source_dir, args.build_dir, args.wheel_cache)
        self.prefix = args.prefix
        self.key = f"{args.prefix}/{self.sha256}/sourcedir.tar.gz"
        obj = stored_artifact(
            f"{name}-sourcedir", self, bucket_name=args.bucket_name, kms_key_arn=args.kms_key_arn, tags=args.tags,
            key=self.key, path=path, sha256=self.sha256, content_type="application/gzip",
        )
        self.s3_uri = pulumi.Output.concat("s3://", obj.bucket, "/", obj.key)
        self.register_outputs({"sha256": self.sha256, "key": self.key, "s3_uri": self.s3_uri})

"""Data versioning on the stack's versioned data bucket: push, list and pull dataset versions.

Objects live under ``<model>/<channel>/<relative path>``; S3 versioning keeps every upload, so a
version id names one exact dataset for training lineage and rollback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from botocore.exceptions import ClientError, NoCredentialsError

from infra.ops.session import StackSession


class DataError(Exception):
    """A user-facing problem with a data command (message says what and how to fix it)."""


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str
    size: int
    last_modified: datetime
    is_latest: bool


def _prefix(model: str, channel: str | None = None) -> str:
    return f"{model}/{channel}/" if channel else f"{model}/"


def _files(path: Path) -> list[tuple[Path, str]]:
    if path.is_file():
        return [(path, path.name)]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if not files:
            raise DataError(f"{path} is an empty directory; give a dataset file or a directory of files")
        return [(p, p.relative_to(path).as_posix()) for p in files]
    raise DataError(f"{path} does not exist; give a dataset file or a directory of files")


def _aws_call(fn, bucket: str, stack: str):
    try:
        return fn()
    except NoCredentialsError:
        raise DataError("no AWS credentials found; configure a profile (mlops:aws_profile) or the AWS_* variables") from None
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):
            raise DataError(f"the data bucket {bucket} does not exist; deploy the stack first (pulumi up --stack {stack})") from None
        if code in ("AccessDenied", "403"):
            raise DataError(f"access to s3://{bucket} was denied: {e.response['Error'].get('Message', code)}") from None
        raise DataError(f"S3 refused the request on s3://{bucket}: {code}: {e.response['Error'].get('Message', '')}") from None


def push(session: StackSession, model: str, path: Path, channel: str = "train") -> list[ObjectVersion]:
    """Upload a file or directory; returns the new version of each object."""
    files = _files(path)
    s3 = session.client("s3")
    bucket = session.bucket("data")
    out = []
    for local, rel in files:
        key = _prefix(model, channel) + rel
        with local.open("rb") as body:
            resp = _aws_call(lambda: s3.put_object(Bucket=bucket, Key=key, Body=body), bucket, session.stack)
        head = _aws_call(lambda: s3.head_object(Bucket=bucket, Key=key, VersionId=resp["VersionId"]), bucket, session.stack)
        out.append(ObjectVersion(key, resp["VersionId"], head["ContentLength"], head["LastModified"], True))
    return out


def list_versions(session: StackSession, model: str, channel: str | None = None) -> list[ObjectVersion]:
    s3 = session.client("s3")
    bucket = session.bucket("data")
    versions: list[ObjectVersion] = []
    paginator = s3.get_paginator("list_object_versions")

    def pages():
        return list(paginator.paginate(Bucket=bucket, Prefix=_prefix(model, channel)))

    for page in _aws_call(pages, bucket, session.stack):
        for v in page.get("Versions", []):
            versions.append(ObjectVersion(v["Key"], v["VersionId"], v["Size"], v["LastModified"], v["IsLatest"]))
    return sorted(versions, key=lambda v: (v.key, v.last_modified), reverse=False)


def pull(session: StackSession, model: str, version_id: str, out: Path | None = None) -> tuple[ObjectVersion, Path]:
    """Download one exact object version (found by id under the model's prefix)."""
    match = [v for v in list_versions(session, model) if v.version_id == version_id]
    if not match:
        raise DataError(
            f"version {version_id!r} not found under s3://{session.bucket('data')}/{model}/; "
            f"`mlops data list --stack {session.stack} --model {model}` shows the versions"
        )
    version = match[0]
    target = out if out is not None else Path(version.key.rsplit("/", 1)[-1])
    if target.is_dir():
        target = target / version.key.rsplit("/", 1)[-1]
    target.parent.mkdir(parents=True, exist_ok=True)
    s3 = session.client("s3")
    bucket = session.bucket("data")
    resp = _aws_call(lambda: s3.get_object(Bucket=bucket, Key=version.key, VersionId=version_id), bucket, session.stack)
    tmp = target.with_name(target.name + ".part")
    with tmp.open("wb") as fh:
        for chunk in resp["Body"].iter_chunks(1 << 20):
            fh.write(chunk)
    tmp.replace(target)  # never leave a half-written dataset under the real name
    return version, target

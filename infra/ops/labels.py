"""Ground-truth delivery: ``mlops labels push`` turns ``(inference_id, label)`` rows into Model Monitor's
ground-truth records under ``<model>/ground-truth/YYYY/MM/DD/HH/`` in the data bucket (see training.quality)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

from infra.ops.session import StackSession
from infra.ops.data import DataError, _aws_call
from training.quality import QualityError, ground_truth_key, ground_truth_record, read_label_file


def push_labels(session: StackSession, model: str, path: Path, now: datetime | None = None) -> tuple[str, int]:
    """Upload the labels of ``path``; returns the S3 key and the number of labels. Nothing is written
    when any row is bad (the error names the line)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; give a CSV (inference_id,label) or JSON Lines file") from None
    try:
        pairs = read_label_file(text, str(path))
    except QualityError as e:
        raise DataError(str(e)) from None
    body = "".join(ground_truth_record(ident, [label]) + "\n" for ident, label in pairs).encode()
    # Named by content: pushing the same file twice in an hour writes the same object, not a duplicate.
    key = ground_truth_key(model, now or datetime.now(timezone.utc), hashlib.sha256(body).hexdigest()[:16])
    s3 = session.client("s3")
    bucket = session.bucket("data")
    _aws_call(lambda: s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/jsonl"), bucket, session.stack)
    return key, len(pairs)

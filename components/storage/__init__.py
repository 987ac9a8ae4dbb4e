"""Storage: the private, TLS-only, KMS-encrypted bucket.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components._lazy import lazy_getattr

if TYPE_CHECKING:
    from components.storage.bucket import ObjectLock, SecureBucket, SecureBucketArgs
    from components.storage.ref import BucketRef

_EXPORTS = {
    "ObjectLock": "bucket",
    "SecureBucket": "bucket",
    "SecureBucketArgs": "bucket",
    "BucketRef": "ref",
}

__all__ = [
    "BucketRef",
    "ObjectLock",
    "SecureBucket",
    "SecureBucketArgs",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)

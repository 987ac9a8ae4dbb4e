"""The check every job makes before it runs the code package: its sha256 is the digest the stack deployed.

The package is executed, and the model archives it writes are unpickled later: an object swapped in the models
bucket must not run, whoever could write it. Standard library only (the drift Lambda builds its processing
job's request with it).
"""

from __future__ import annotations

CODE_SHA_ENV = "MLOPS_CODE_SHA256"


def verify_code(package: str, failure_file: str) -> str:
    """A shell script (for ``sh -c SCRIPT CMD ARGS...``) that checks ``package`` against ``$MLOPS_CODE_SHA256``,
    writes the reason to ``failure_file`` and exits 1 on a mismatch, and otherwise runs ``CMD ARGS...``."""
    return (
        f'echo "${CODE_SHA_ENV}  {package}" | sha256sum -c --status || '
        f'{{ echo "error: the code package is not sha256 ${CODE_SHA_ENV} (changed since it was deployed)" > {failure_file}; exit 1; }}; '
        'exec "$0" "$@"'
    )


def sha_of_code_uri(code_uri: str) -> str:
    """The digest in a code package's content-addressed URI (``s3://<bucket>/code/<sha256>/sourcedir.tar.gz``)."""
    parts = code_uri.rstrip("/").split("/")
    digest = parts[-2] if len(parts) >= 2 else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{code_uri} is not a content-addressed code package (code/<sha256>/sourcedir.tar.gz)")
    return digest

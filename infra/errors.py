"""The one base class of errors that are the user's to fix.

Every ``mlops`` command maps a :class:`UserError` the same way (infra/cli/common.py ``user_errors``): the
message on stderr, exit code 2, no traceback. ``str()`` of each is the whole user-facing message: what is
wrong and what would be accepted. The library's own refusals (config, data, operations, local runs,
manifests) subclass it; errors of the container runtime (``training``, which cannot import ``infra``) are
re-raised as a ``UserError`` where the CLI calls it.
"""

from __future__ import annotations


class UserError(Exception):
    """The user's input is wrong (a bad file, an unknown stack or model, no credentials, an undeployed stack)."""

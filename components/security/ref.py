"""A reference to a KMS key: the stack's own (``StackKey``) or one another stack or team owns (by ARN)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi

if TYPE_CHECKING:
    from components.security.key import StackKey


@dataclass(frozen=True)
class KeyRef:
    """What a consumer of a key needs: its ARN (for SSE-KMS, log groups, grants' ``kms:*`` statements)."""

    key_arn: pulumi.Input[str]
    """The key's ARN."""

    @classmethod
    def from_key(cls, key: "StackKey") -> "KeyRef":
        """The reference of a key this program creates."""
        return cls(key.key_arn)

    @classmethod
    def from_arn(cls, key_arn: pulumi.Input[str]) -> "KeyRef":
        """A key owned elsewhere (another stack, a security team): only its ARN is known."""
        return cls(key_arn)

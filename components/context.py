"""The stack context every component takes once: who owns the stack, where it lives, how it is tagged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi

from components import naming


@dataclass(frozen=True)
class StackContext:
    """Passed once to every args class instead of five loose fields; components derive their physical names
    from it through ``components.naming``.

    ``account_id`` and ``partition`` are Inputs: a program reads them with ``aws.get_caller_identity_output()``
    and ``aws.get_partition_output()`` (see ``examples/minimal``)."""

    prefix: str
    """First part of every physical name (``<prefix>-<stack>-...``): the stack file's ``mlops:name_prefix``."""
    stack: str
    """The Pulumi stack name (``pulumi.get_stack()``)."""
    environment: str
    """``dev``, ``staging`` or ``prod``: serving defaults and approval rules depend on it."""
    region: str
    """The AWS region every resource of the stack is created in."""
    account_id: pulumi.Input[str]
    """The AWS account of the stack (IAM scopes and bucket names use it)."""
    partition: pulumi.Input[str] = "aws"
    """The AWS partition (``aws``, ``aws-cn``, ``aws-us-gov``). Default ``aws``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every resource; the components add ``mlops:project``, ``mlops:stack``, ``mlops:environment``
    (and ``mlops:model`` on a model's resources). Default: none besides those."""
    protect: bool = False
    """Protect stateful resources (buckets, key, registry, log groups) from deletion. Default ``False``."""

    @property
    def stem(self) -> str:
        """Every physical name of the stack starts with ``<stem>-``."""
        return naming.stem(self.prefix, self.stack)

    @property
    def log_group_prefix(self) -> str:
        return naming.log_group_prefix(self.prefix, self.stack)

    @property
    def stack_tags(self) -> dict[str, str]:
        """The tags of the stack's shared resources."""
        return naming.tags(self.stack, self.environment, dict(self.tags))

    def model_tags(self, model: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The tags of one model's resources: the stack's, the model's own ``extra``, and ``mlops:model``."""
        return naming.tags(self.stack, self.environment, {**self.tags, **(extra or {})}, model=model)

    def names(self, model: str) -> naming.ModelNames:
        """Every physical name of ``model`` in this stack."""
        return naming.ModelNames(self.prefix, self.stack, model)


class InContext:
    """For args classes with a ``context`` field: the stack's values, read from it (never restated by the caller)."""

    context: StackContext

    @property
    def name_prefix(self) -> str:
        return self.context.prefix

    @property
    def stack(self) -> str:
        return self.context.stack

    @property
    def region(self) -> str:
        return self.context.region

    @property
    def account_id(self) -> pulumi.Input[str]:
        return self.context.account_id

    @property
    def partition(self) -> pulumi.Input[str]:
        return self.context.partition

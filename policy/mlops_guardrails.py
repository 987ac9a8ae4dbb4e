"""Adapts the rules of ``infra.review.rules`` to ``pulumi_policy``: one policy per rule, same id and severity.

Rules that read one resource become ResourceValidationPolicies (they run on each resource's inputs
as it is registered); rules that join resources (a bucket and its versioning, encryption, ...) become
StackValidationPolicies (they run once on every resource of the stack). Values Pulumi cannot know
during a preview reach the rules as ``infra.review.rules.UNKNOWN``, which no rule reports on.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi_policy import (
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

# The project root, so `infra.review.rules` resolves to this checkout's module even without an install
# (the same reason infra/__main__.py does it).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.review import rules  # noqa: E402

PACK_NAME = "mlops-stack-guardrails"


def plain(value: Any) -> Any:
    """Policy-SDK properties (proxies that raise on unknown values) as plain data with ``rules.UNKNOWN``."""
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                out[key] = plain(value[key])
            except UnknownValueError:
                out[key] = rules.UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = []
        for i in range(len(value)):
            try:
                items.append(plain(value[i]))
            except UnknownValueError:
                items.append(rules.UNKNOWN)
        return items
    return value


def _record(resource_type: str, name: str, urn: str, props: Any, protect: bool, deps: Mapping[str, Any] | None = None) -> dict:
    return {
        "type": resource_type,
        "name": name,
        "urn": urn,
        "inputs": plain(props),
        "protect": bool(protect),
        "property_dependencies": {k: [d.urn for d in v] for k, v in (deps or {}).items()},
    }


def _text(v: rules.Violation) -> str:
    return f"{v.type} {v.name!r}: {v.message}"


def resource_policy(rule: rules.Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        record = _record(args.resource_type, args.name, args.urn, args.props, args.opts.protect)
        for v in rules.check_resource(rule, record, rules.Stack([record])):
            report(_text(v), None)

    return ResourceValidationPolicy(
        name=rule.id, description=rule.description, validate=validate, severity=Severity(rule.severity)
    )


def stack_policy(rule: rules.Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        records = [
            _record(r.resource_type, r.name, r.urn, r.props, r.opts.protect, r.property_dependencies)
            for r in args.resources
        ]
        stack = rules.Stack(records)
        for record in stack.resources:
            for v in rules.check_resource(rule, record, stack):
                report(_text(v), v.urn)

    return StackValidationPolicy(
        name=rule.id, description=rule.description, validate=validate, severity=Severity(rule.severity)
    )


def policies() -> list:
    """One policy per rule of ``infra.review.rules.RULES`` (the pack makes them mandatory: a violation fails the run)."""
    return [stack_policy(rule) if rule.needs_stack else resource_policy(rule) for rule in rules.RULES]

"""What a change does to a stack: two synth manifests in, resources added, changed, replaced and removed out.

Pure (no Pulumi, no cloud): ``mlops diff`` runs it in the pull-request workflow on the manifests of the
base branch and of the PR head. A change is *blocking* when it would lose data or weaken a guardrail:

- a stateful resource (:data:`STATEFUL_TYPES`) is deleted or replaced. Replacement is read from
  :data:`REPLACE_ON_CHANGE` (the inputs the provider cannot update in place) and from a changed URN
  (a renamed resource or a component moved to another parent is a delete plus a create, unless the new
  resource lists the old URN in ``aliases``);
- ``protect`` is dropped;
- versioning, encryption or public-access blocking is turned off or weakened (:data:`WEAKENING_CHECKS`).

A stateful resource removed while ``retain_on_delete`` was set stays in AWS and does not block.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from infra.review import rules

# Resources whose deletion or replacement loses data (objects, key material, subscriptions, events,
# registered model versions).
STATEFUL_TYPES = frozenset(
    {
        rules.BUCKET,
        rules.KEY,
        rules.TOPIC,
        rules.LOG_GROUP,
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
    }
)

ALL_INPUTS = "*"
"""Every input but tags forces replacement (the service has no update call for the resource)."""

# Inputs whose change makes the provider replace the resource (``ForceNew`` in the upstream AWS
# provider schema). pulumi-aws 7 adds a per-resource ``region``; moving a resource to another region
# is always a replacement. Keep this table explicit: a property missing here shows as an in-place
# change, so add a type when a component starts using it.
REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    rules.BUCKET: ("bucket", "bucketPrefix", "bucketNamespace", "objectLockEnabled", "region"),
    rules.KEY: ("customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId", "region"),
    rules.TOPIC: ("name", "namePrefix", "fifoTopic", "region"),
    rules.LOG_GROUP: ("name", "namePrefix", "logGroupClass", "region"),
    # SageMaker has no UpdateModelPackageGroup: the description is fixed at creation like the name.
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": ("modelPackageGroupName", "modelPackageGroupDescription", "region"),
    rules.QUEUE: ("name", "namePrefix", "fifoQueue", "region"),
    "aws:kms/alias:Alias": ("name", "namePrefix", "region"),
    rules.ROLE: ("name", "namePrefix", "path"),
    rules.STATE_MACHINE: ("name", "namePrefix", "type", "region"),
    rules.SAGEMAKER_MODEL: (ALL_INPUTS,),
    rules.ENDPOINT_CONFIG: (ALL_INPUTS,),
    "aws:sagemaker/endpoint:Endpoint": ("name", "region"),
    rules.METRIC_ALARM: ("name", "region"),
    "aws:s3/bucketObjectv2:BucketObjectv2": ("bucket", "key", "region"),
    **{
        token: ("bucket", "expectedBucketOwner", "region")
        for token in (
            rules.PUBLIC_ACCESS_BLOCK, rules.OWNERSHIP, rules.ENCRYPTION, rules.BUCKET_POLICY, rules.VERSIONING,
            rules.LIFECYCLE, rules.LOGGING, "aws:s3/bucketNotification:BucketNotification",
            "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        )
    },
    # A provider whose region changes is replaced, and every resource it manages with it.
    "pulumi:providers:aws": ("region",),
}

NOT_REPLACING = frozenset({"tags", "tagsAll"})


@dataclass(frozen=True)
class Change:
    kind: str
    """``add``, ``update``, ``replace`` or ``delete``."""
    urn: str
    type: str
    name: str
    reasons: tuple[str, ...] = ()
    blocking: tuple[str, ...] = ()
    """Why this change must not merge as it is (empty: it may)."""


@dataclass
class DiffReport:
    stack: str
    changes: list[Change] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def blocking(self) -> list[Change]:
        return [c for c in self.changes if c.blocking]

    def summary(self) -> str:
        counts = {k: len(self.of_kind(k)) for k in ("add", "update", "replace", "delete")}
        return (
            f"{counts['add']} added, {counts['update']} changed, {counts['replace']} replaced, "
            f"{counts['delete']} removed; {len(self.blocking)} blocking"
        )


class ManifestError(Exception):
    """A manifest file cannot be read or is not a synth manifest."""


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise ManifestError(f"cannot read manifest {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path} is not JSON ({e.msg} at line {e.lineno}); give a file written by `mlops synth --out`") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resources"), list):
        raise ManifestError(f"{path} is not a synth manifest (expected an object with a `resources` list, from `mlops synth --out`)")
    for i, r in enumerate(doc["resources"]):
        if not isinstance(r, dict) or not {"urn", "type", "name"} <= r.keys():
            raise ManifestError(f"{path}: resources[{i}] lacks urn/type/name; regenerate it with `mlops synth --out`")
    return doc


# ---------------------------------------------------------------------------------------------------------------
# Weakening checks: (type, old inputs, new inputs or None when deleted) → reasons


def _versioning(old: dict, new: dict | None) -> list[str]:
    was = rules._dig(old, "versioningConfiguration", "status")
    now = rules._dig(new, "versioningConfiguration", "status") if new is not None else None
    if was == "Enabled" and now != "Enabled":
        return [f"versioning turned off (status {was} → {now or 'removed'}): overwritten and deleted objects would be lost"]
    return []


def _sse_algorithms(inputs: dict | None) -> list[tuple[Any, Any]]:
    return [
        (rules._dig(r, "applyServerSideEncryptionByDefault", "sseAlgorithm"), rules._dig(r, "applyServerSideEncryptionByDefault", "kmsMasterKeyId"))
        for r in rules._as_list((inputs or {}).get("rules"))
    ]


def _bucket_encryption(old: dict, new: dict | None) -> list[str]:
    was_kms = any(a in ("aws:kms", "aws:kms:dsse") for a, _ in _sse_algorithms(old))
    now = _sse_algorithms(new)
    if was_kms and not any(a in ("aws:kms", "aws:kms:dsse") and k for a, k in now):
        detail = ", ".join(str(a) for a, _ in now) or "removed"
        return [f"bucket encryption weakened from SSE-KMS to {detail}"]
    return []


def _public_access(old: dict, new: dict | None) -> list[str]:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    off = [f for f in flags if rules.truthy(old.get(f)) and (new is None or not rules.truthy(new.get(f)))]
    return [f"public access blocking weakened ({', '.join(off)} off)"] if off else []


def _key_property(prop: str, what: str) -> Callable[[dict, dict | None], list[str]]:
    def check(old: dict, new: dict | None) -> list[str]:
        if old.get(prop) and (new is None or not new.get(prop)):
            return [f"{what} removed ({prop} unset)"]
        return []

    return check


def _rotation(old: dict, new: dict | None) -> list[str]:
    if new is not None and rules.truthy(old.get("enableKeyRotation")) and not rules.truthy(new.get("enableKeyRotation")):
        return ["key rotation turned off"]
    return []


WEAKENING_CHECKS: dict[str, Callable[[dict, dict | None], list[str]]] = {
    rules.VERSIONING: _versioning,
    rules.ENCRYPTION: _bucket_encryption,
    rules.PUBLIC_ACCESS_BLOCK: _public_access,
    rules.TOPIC: _key_property("kmsMasterKeyId", "topic encryption"),
    rules.QUEUE: _key_property("kmsMasterKeyId", "queue encryption"),
    rules.LOG_GROUP: _key_property("kmsKeyId", "log group encryption"),
    rules.ENDPOINT_CONFIG: _key_property("kmsKeyArn", "endpoint volume encryption"),
    rules.KEY: _rotation,
}
# Resources that are a guardrail of another resource: deleting one removes the guardrail, the resource stays.
GUARDRAIL_RESOURCES = frozenset({rules.VERSIONING, rules.ENCRYPTION, rules.PUBLIC_ACCESS_BLOCK})


# ---------------------------------------------------------------------------------------------------------------


def _custom(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in doc["resources"] if r.get("custom", True)}


def _changed_inputs(old: dict, new: dict) -> list[str]:
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def _replacing(token: str, changed: list[str]) -> list[str]:
    forcing = REPLACE_ON_CHANGE.get(token, ())
    if ALL_INPUTS in forcing:
        return [k for k in changed if k not in NOT_REPLACING]
    return [k for k in changed if k in forcing]


def _identity(r: dict) -> str | None:
    """The physical name of a resource, to tell a rename (same name, new URN) in the report."""
    props = r.get("inputs") or {}
    for key in ("bucket", "name", "modelPackageGroupName"):
        if isinstance(props.get(key), str):
            return props[key]
    return None


def diff(old_doc: dict[str, Any], new_doc: dict[str, Any]) -> DiffReport:
    """Compare two manifests of the same stack (``mlops synth --out`` of the base and the head)."""
    old, new = _custom(old_doc), _custom(new_doc)
    report = DiffReport(str(new_doc.get("stack") or old_doc.get("stack") or "?"))
    aliased = {alias: urn for urn, r in new.items() for alias in r.get("aliases") or []}
    provider_replaced = False

    changes: list[Change] = []
    for urn, o in old.items():
        n = new.get(urn) or new.get(aliased.get(urn, ""))
        if n is None:
            changes.append(_deleted(o, new))
            continue
        oi, ni = o.get("inputs") or {}, n.get("inputs") or {}
        changed = _changed_inputs(oi, ni)
        reasons, blocking = [], []
        if n["urn"] != urn:
            reasons.append(f"renamed from {o['name']!r} with an alias (no replacement)")
        if o.get("protect") and not n.get("protect"):
            blocking.append("protection dropped (protect: true → false)")
        blocking += WEAKENING_CHECKS.get(o["type"], lambda *_: [])(oi, ni)
        replacing = _replacing(o["type"], changed)
        if not changed and not blocking and not reasons:
            continue
        if replacing:
            reasons.append(f"replaced: {', '.join(replacing)} cannot change in place")
            if o["type"] in STATEFUL_TYPES:
                blocking.append(f"stateful resource would be replaced ({', '.join(replacing)} changed): its data would be lost")
            if o["type"].startswith("pulumi:providers:"):
                provider_replaced = True
        other = [k for k in changed if k not in replacing]
        if other:
            reasons.append(f"changed: {', '.join(other)}")
        kind = "replace" if replacing else "update"
        changes.append(Change(kind, n["urn"], n["type"], n["name"], tuple(reasons), tuple(blocking)))

    matched_new = {aliased.get(urn, urn) for urn in old}
    renamed_from = {(o["type"], _identity(o)): o for urn, o in old.items() if urn not in new and urn not in aliased}
    for urn, n in new.items():
        if urn in matched_new or urn in old:
            continue
        prior = renamed_from.get((n["type"], _identity(n))) if _identity(n) else None
        reason = f"created (the same physical name was {prior['name']!r}: a delete plus a create)" if prior else "created"
        changes.append(Change("add", urn, n["type"], n["name"], (reason,)))

    if provider_replaced:
        # A replaced provider replaces every resource it manages (a manifest's resources share one provider).
        by_urn = {c.urn: c for c in changes}
        reason, block = "replaced with its provider (region changed)", "stateful resource would be replaced with its provider: its data would be lost"
        for urn, r in new.items():
            if r["type"] not in STATEFUL_TYPES or urn not in old:
                continue
            c = by_urn.get(urn)
            by_urn[urn] = Change("replace", urn, r["type"], r["name"], (c.reasons if c else ()) + (reason,), (c.blocking if c else ()) + (block,))
        changes = list(by_urn.values())
    report.changes = sorted(changes, key=lambda c: (not c.blocking, ("delete", "replace", "update", "add").index(c.kind), c.urn))
    return report


def _deleted(o: dict, new: dict[str, dict]) -> Change:
    reasons = ["removed from the program"]
    blocking: list[str] = []
    same_name = [n for n in new.values() if n["type"] == o["type"] and _identity(n) and _identity(n) == _identity(o)]
    if same_name:
        reasons = [f"URN changed (now {same_name[0]['name']!r}): Pulumi deletes it and creates a new one; add an alias to keep it"]
    if o["type"] in STATEFUL_TYPES:
        if o.get("retain_on_delete"):
            reasons.append("retained in AWS (retain_on_delete), only forgotten by the stack")
        else:
            blocking.append("stateful resource would be deleted: its data would be lost")
    if o.get("protect"):
        blocking.append("resource is protected; Pulumi refuses to delete it")
    if o["type"] in GUARDRAIL_RESOURCES:
        blocking += WEAKENING_CHECKS[o["type"]](o.get("inputs") or {}, None)
    return Change("delete", o["urn"], o["type"], o["name"], tuple(reasons), tuple(dict.fromkeys(blocking)))


# ---------------------------------------------------------------------------------------------------------------
# Rendering

_KIND_TITLES = {"add": "added", "update": "changed", "replace": "replaced", "delete": "removed"}


def to_markdown(report: DiffReport) -> str:
    """The PR review summary of one stack (GitHub-flavoured markdown, for ``$GITHUB_STEP_SUMMARY``)."""
    verdict = f"**{len(report.blocking)} blocking**" if report.blocking else "nothing blocking"
    lines = [f"### Stack `{report.stack}`: {report.summary().rsplit(';', 1)[0]}; {verdict}", ""]
    if not report.changes:
        lines.append("No resource changes.")
        return "\n".join(lines) + "\n"
    lines += ["| | change | resource | type | details |", "|---|---|---|---|---|"]
    for c in report.changes:
        mark = "BLOCKING" if c.blocking else ""
        details = "; ".join((*c.blocking, *c.reasons)).replace("|", "\\|")
        lines.append(f"| {mark} | {_KIND_TITLES[c.kind]} | `{c.name}` | `{c.type}` | {details} |")
    return "\n".join(lines) + "\n"

"""Assertion helpers for manifests (imported by tests as ``helpers``)."""

from __future__ import annotations

import json
from pathlib import Path

from infra.review.synth import Manifest


def policy(resource: dict, key: str = "policy") -> dict:
    """A policy input (a JSON string as the provider receives it) as a dict."""
    return json.loads(resource["inputs"][key])


def children_of(manifest: Manifest, parent_urn: str) -> list[dict]:
    return [r for r in manifest.resources if r["parent"] == parent_urn]


def only(resources: list[dict]) -> dict:
    assert len(resources) == 1, [r["name"] for r in resources]
    return resources[0]


def write_stack(tmp_path: Path, body: str, name: str = "test") -> Path:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(body)
    return path

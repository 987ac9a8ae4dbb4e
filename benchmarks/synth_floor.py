"""The synth benchmark's floors: a manifest's resources registered straight to the same recording mock engine.

``replay(manifest, fair=True)`` is the *fair* floor: every input the program passed as an Output of other
resources (the manifest's ``property_dependencies``) is passed as an Output of the same resources here, and
``depends_on``, parents and aliases are the program's, so the engine does the same waiting and serialising; the
types, names and input values are copied from the manifest. ``fair=False`` is the constant-input floor (plain
values, no dependencies): what no real program can reach, reported beside it.

Run as a script it is the *cold* floor process: ``python benchmarks/synth_floor.py MANIFEST.json`` starts Python,
imports pulumi and the mock engine (nothing of the program: no config, no components, no CLI) and replays through
pulumi-aws's own classes (importing the modules of the types it registers, as the program must). It gets the same
garbage-collector policy as ``mlops`` (imports with collection paused then frozen, the run paused, the rest frozen
at exit), so the ratio measures the program and its imports, not GC tuning.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

gc.disable()  # the same policy as infra/cli/__init__.py (see the module docstring)

import pulumi  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.review.synth import Manifest, RecordingMonitor, SynthMocks, run_program  # noqa: E402

gc.freeze()
gc.enable()


FALLBACKS: list[str] = []
"""Types the fair floor had to register generically (reported by the benchmark)."""


@cache
def _aws_classes() -> dict[str, tuple[str, str]]:
    """Type token -> (module, class) of pulumi-aws, from the registry its ``__init__`` declares (read as text:
    importing the package's modules is what the floor pays for per type, as the program does)."""
    spec = importlib.util.find_spec("pulumi_aws")
    text = Path(spec.origin).read_text()
    doc = json.loads(re.search(r'resource_modules="""(.*?)"""', text, re.S).group(1))
    return {token: (m["fqn"], cls) for m in doc for token, cls in m["classes"].items()}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _register(r: dict[str, Any], made: dict[str, pulumi.Resource], fair: bool) -> pulumi.Resource:
    parent = made.get(r["parent"]) if r["parent"] else None
    inputs: dict[str, Any] = dict(r["inputs"])
    deps: list[pulumi.Resource] = []
    if fair:
        for key, urns in (r.get("property_dependencies") or {}).items():
            sources = [made[u] for u in urns if u in made]
            if key in inputs and sources:
                value = inputs[key]
                inputs[key] = pulumi.Output.all(*[s.urn for s in sources]).apply(lambda _, v=value: v)
        deps = [made[u] for u in r.get("depends_on") or [] if u in made]
    opts = pulumi.ResourceOptions(parent=parent, depends_on=deps or None, protect=r.get("protect", False),
                                  retain_on_delete=r.get("retain_on_delete", False))
    if r["custom"] and fair and r["type"] in _aws_classes():
        # The fair floor goes through pulumi-aws's own classes, as any Python program must (their modules'
        # imports and input handling are not the program's overhead).
        module, cls = _aws_classes()[r["type"]]
        try:
            return getattr(importlib.import_module(module), cls)(r["name"], opts, **{_snake(k): v for k, v in inputs.items()})
        except TypeError:  # a required input the manifest holds as unknown (e.g. an Output of a retained resource)
            FALLBACKS.append(r["type"])
    if r["custom"]:
        return pulumi.CustomResource(r["type"], r["name"], inputs, opts)
    return pulumi.ComponentResource(r["type"], r["name"], None, opts)


def replay(manifest: Manifest | dict[str, Any], *, fair: bool = True) -> None:
    """Register ``manifest``'s resources (call inside ``run_program``)."""
    resources = manifest.resources if isinstance(manifest, Manifest) else manifest["resources"]
    made: dict[str, pulumi.Resource] = {}
    for r in resources:  # registration order: parents and dependencies come first
        made[r["urn"]] = _register(r, made, fair)


def main() -> None:
    doc = json.loads(Path(sys.argv[1]).read_text())
    fair = "--constant" not in sys.argv
    region = next((r["inputs"].get("region") for r in doc["resources"] if r["type"] == "pulumi:providers:aws"), "us-east-1")
    run_program(lambda: replay(doc, fair=fair), stack=doc["stack"], region=region or "us-east-1",
                monitor=RecordingMonitor(SynthMocks(region or "us-east-1")))
    gc.freeze()


if __name__ == "__main__":
    main()

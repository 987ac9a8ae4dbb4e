"""Offline synth: run the real ``infra/`` program under Pulumi's mock engine and record what it registers.

No Pulumi CLI, no provider plugin, no cloud, no credentials. The manifest holds every resource with
its provider type token, parent, options and the inputs as the provider would receive them, which is
what a reviewer (and ``mlops diff``/``mlops check``) need from a PR.
"""

from __future__ import annotations

import hashlib
import gc
import json
import logging
import runpy
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime.proto import source_pb2
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import get_root_resource, set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

if TYPE_CHECKING:
    from infra.config import StackConfig
# infra.config (pydantic models) loads on first use: replaying a manifest (the benchmark's floor) needs none of it.

PROJECT = "mlops-stack"
MOCK_ACCOUNT = "123456789012"
PROGRAM = Path(__file__).resolve().parent.parent / "__main__.py"


EC2_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": ("vpc", "vpc"),
    "aws:ec2/subnet:Subnet": ("subnet", "subnet"),
    "aws:ec2/routeTable:RouteTable": ("rtb", "route-table"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("rtbassoc", "route-table-association"),
    "aws:ec2/securityGroup:SecurityGroup": ("sg", "security-group"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("sg", "security-group"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("sgr", "security-group-rule"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": ("sgr", "security-group-rule"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpce", "vpc-endpoint"),
    "aws:ec2/flowLog:FlowLog": ("fl", "vpc-flow-log"),
}
"""Mock ids of the network's resources: ``<prefix>-<17 hex>`` as EC2 names them, and the ARN's resource type."""


class SynthMocks(pulumi.runtime.Mocks):
    """Deterministic stand-ins for what the provider would compute (ids, ARNs): same program, same manifest."""

    def __init__(self, region: str, account: str = MOCK_ACCOUNT):
        self.region = region
        self.account = account

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        token = args.typ
        if token.startswith("pulumi:providers:"):
            return f"{args.name}-provider", state
        service = token.split(":")[1].split("/")[0]
        physical = str(state.get("name") or state.get("bucket") or args.name)
        if token == "aws:s3/bucket:Bucket":
            state.setdefault("arn", f"arn:aws:s3:::{physical}")
            return physical, state
        if token == "aws:kms/key:Key":
            key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, args.name))
            state.update(keyId=key_id, arn=f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}")
            return key_id, state
        if service == "iam":
            kind = token.rsplit(":", 1)[1].lower()
            state.setdefault("arn", f"arn:aws:iam::{self.account}:{kind}/{physical}")
            state.setdefault("name", physical)
            return physical, state
        if token == "aws:sns/topic:Topic":
            state.setdefault("arn", f"arn:aws:sns:{self.region}:{self.account}:{physical}")
            return state["arn"], state
        if token == "aws:cloudwatch/logGroup:LogGroup":
            state.setdefault("arn", f"arn:aws:logs:{self.region}:{self.account}:log-group:{physical}")
            return physical, state
        if token == "aws:sfn/stateMachine:StateMachine":
            state.setdefault("arn", f"arn:aws:states:{self.region}:{self.account}:stateMachine:{physical}")
            if state.get("publish"):
                state.setdefault("stateMachineVersionArn", f"{state['arn']}:1")
            return state["arn"], state
        if token == "aws:sfn/alias:Alias":
            version = state["routingConfigurations"][0]["stateMachineVersionArn"]
            state.setdefault("arn", f"{version.rsplit(':', 1)[0]}:{physical}")
            return state["arn"], state
        if token in EC2_ID_PREFIXES:
            # EC2 ids as AWS makes them (``subnet-`` and 17 hex digits), stable per logical name.
            prefix, kind = EC2_ID_PREFIXES[token]
            ec2_id = f"{prefix}-{hashlib.sha256(args.name.encode()).hexdigest()[:17]}"
            state.setdefault("arn", f"arn:aws:ec2:{self.region}:{self.account}:{kind}/{ec2_id}")
            if token == "aws:ec2/vpcEndpoint:VpcEndpoint" and state.get("vpcEndpointType") == "Gateway":
                state.setdefault("prefixListId", f"pl-{hashlib.sha256(args.name.encode()).hexdigest()[:8]}")
            return ec2_id, state
        kind = token.rsplit(":", 1)[1].lower()
        state.setdefault("arn", f"arn:aws:{service}:{self.region}:{self.account}:{kind}/{physical}")
        return physical, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account,
                "arn": f"arn:aws:iam::{self.account}:user/synth",
                "userId": "SYNTH",
                "id": self.account,
            }
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws", "reverseDnsPrefix": "com.amazonaws"}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{z}" for z in "abcdef"]
            return {"names": names, "zoneIds": [f"use1-az{i + 1}" for i in range(len(names))], "id": self.region}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, plus a record of each registration request (parent, options, inputs)."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.records: list[dict[str, Any]] = []
        self.aliases: dict[str, list[str]] = {}
        """URN → every earlier URN it answers to (its own aliases and those it inherits from its parent)."""
        self.root_urn = ""

    def _compose(self, parent: str, type_: str, name: str, stack: str = "", project: str = "") -> str:
        """A URN as this monitor makes them (``make_urn``), with the stack and project an alias may name.

        No parent is the root stack: the mock monitor qualifies top-level types with it, so every URN in a
        manifest (and every alias) follows that one scheme.
        """
        urn = self.make_urn(parent or self.root_urn, type_, name)
        if stack or project:
            _, own_project, rest = urn.removeprefix("urn:pulumi:").split("::", 2)
            urn = f"urn:pulumi:{stack or pulumi.get_stack()}::{project or own_project}::{rest}"
        return urn

    def _alias_urns(self, request) -> list[str]:
        """Resolve the request's aliases to URNs the way the engine does (``generateAliases``).

        A spec alias defaults every field it leaves out to the resource's own (name, type, parent, stack,
        project); ``noParent`` means "had no parent". Then the parent's aliases multiply out: a child keeps
        its identity when only its parent was renamed or moved, and when both were.
        """
        own: list[str] = []
        for alias in request.aliases:
            if alias.WhichOneof("alias") == "urn":
                own.append(alias.urn)
                continue
            spec = alias.spec
            # As the engine reads a spec: noParent wins, then a non-empty parentUrn, else the resource's own parent.
            parent = "" if spec.noParent else (spec.parentUrn or request.parent)
            own.append(self._compose(parent, spec.type or request.type, spec.name or request.name, spec.stack, spec.project))
        found = dict.fromkeys(own)
        parent_name = request.parent.rsplit("::", 1)[-1] if request.parent else ""
        for parent_alias in self.aliases.get(request.parent, []):
            for type_, name in [(request.type, request.name), *(_type_and_name(a) for a in own)]:
                found.setdefault(self.make_urn(parent_alias, type_, name))
                if parent_name and name.startswith(parent_name):
                    # The SDK's inherited child alias: a child named after its parent follows the parent's old name.
                    found.setdefault(self.make_urn(parent_alias, type_, parent_alias.rsplit("::", 1)[-1] + name[len(parent_name) :]))
        return list(found)

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.root_urn = response.urn
        aliases = [a for a in self._alias_urns(request) if a != response.urn]
        if aliases:
            self.aliases[response.urn] = aliases
        if request.type != "pulumi:pulumi:Stack":
            self.records.append(
                {
                    "urn": response.urn,
                    "type": request.type,
                    "name": request.name,
                    "parent": request.parent or None,
                    "provider": request.provider or None,
                    "custom": bool(request.custom),
                    "inputs": _plain(rpc.deserialize_properties(request.object)),
                    "protect": bool(request.protect),
                    "retain_on_delete": bool(request.retainOnDelete),
                    "depends_on": sorted(request.dependencies),
                    # Which input came from which resource, as the engine gives a policy pack (rules join on it).
                    "property_dependencies": {k: sorted(v.urns) for k, v in request.propertyDependencies.items() if v.urns},
                    "ignore_changes": list(request.ignoreChanges),
                    **({"aliases": aliases} if aliases else {}),
                }
            )
        return response


def _type_and_name(urn: str) -> tuple[str, str]:
    qualified, name = urn.split("::", 3)[2:]
    return qualified.rsplit("$", 1)[-1], name


def _plain(value: Any) -> Any:
    """JSON-friendly copy of deserialized inputs (resource references become their URNs, secrets are masked)."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return "[secret]"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, pulumi.FileAsset):
        from infra.config import base_dir

        path, root = Path(value.path), base_dir()
        return {"asset": "file", "path": str(path.relative_to(root) if path.is_relative_to(root) else path)}
    return str(value)


@dataclass
class Manifest:
    project: str
    stack: str
    resources: list[dict[str, Any]]
    outputs: dict[str, Any] = field(default_factory=dict)
    identities: dict[str, str] = field(default_factory=dict, repr=False)
    """Computed ARNs, ids and names → the URN that owns them (for links in the diagram; not serialized)."""
    messages: list[str] = field(default_factory=list, repr=False)
    """What the program told the user (``pulumi.log``: e.g. drift dropped because capture is off; not serialized)."""

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "stack": self.stack, "resources": self.resources, "outputs": self.outputs}

    def of_type(self, token: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == token]

    def counts(self) -> Counter:
        return Counter(r["type"] for r in self.resources)


def engine_config(config_keys: dict[str, Any]) -> dict[str, str]:
    """Config as the Pulumi engine hands it to a program: structured values JSON-encoded."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config_keys.items()}


_URIS: dict[str, Any] = {}
_FRAMES: dict[tuple[str, int], Any] = {}


def _stack_trace() -> source_pb2.StackTrace:
    """What ``pulumi.runtime.resource._get_stack_trace`` returns, without its cost: the SDK walks the stack with
    ``traceback.extract_stack`` (a ``linecache`` lookup and a ``stat`` per frame, a ``Path.as_uri`` per frame) for
    every resource, so its cost grows with how deeply components nest (77 ms of a cold dev synth measured here).
    The same frames are taken here (those above the third ``__init__``, innermost first) from the frame objects,
    with each file's URI and each frame's message made once. A test compares it with the SDK's on every resource
    of a synth."""
    frame = sys._getframe(1)
    seen = 0
    while frame is not None:
        if frame.f_code.co_name == "__init__":
            seen += 1
            if seen == 3:
                break
        frame = frame.f_back
    if frame is None or frame.f_back is None:
        return source_pb2.StackTrace()
    frames = []
    frame = frame.f_back
    while frame is not None:
        key = (frame.f_code.co_filename, frame.f_lineno)
        message = _FRAMES.get(key)
        if message is None:
            message = _FRAMES[key] = source_pb2.StackFrame(pc=_source_position(*key))
        frames.append(message)
        frame = frame.f_back
    return source_pb2.StackTrace(frames=frames)


def _source_position(filename: str, line: int | None) -> Any:
    if filename == "" or line is None:
        return None
    if filename not in _URIS:
        try:
            _URIS[filename] = Path(filename).as_uri()
        except BaseException:  # noqa: BLE001 (as the SDK: a frame without a file position has none)
            _URIS[filename] = None
    uri = _URIS[filename]
    return None if uri is None else source_pb2.SourcePosition(uri=uri, line=line)


def run_program(
    program: Callable[[], None],
    *,
    stack: str,
    region: str,
    config: dict[str, Any] | None = None,
    monitor: RecordingMonitor | None = None,
    project: str = PROJECT,
) -> Manifest:
    """Run ``program`` under the recording mock engine and return what it registered and exported."""
    monitor = monitor or RecordingMonitor(SynthMocks(region))
    mocks = monitor.mocks
    set_root_resource(None)  # a fresh root stack per run: outputs of an earlier run must not leak in
    messages: list[str] = []
    logger = logging.getLogger(f"mlops.synth.{stack}")
    logger.handlers = [_Collect(messages)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=logger)
    set_all_config(engine_config(config or {}))
    outputs: dict[str, Any] = {}

    def run() -> None:
        program()
        root = get_root_resource()
        resolved = _sync_await(pulumi.Output.from_input(root.outputs).future()) if root is not None else {}
        outputs.update(resolved or {})

    # The program allocates ~10^5 long-lived objects (resources, Outputs, futures) and frees few: the cyclic
    # collector re-scans them all on every generation-2 pass, 12-20% of a synth's CPU and superlinear in the
    # number of resources. Existing objects are frozen and collection paused while the program runs; the
    # cycles it leaves are collected once at the end.
    frozen = gc.isenabled()
    gc.freeze()
    gc.disable()
    sdk_stack_trace = getattr(pulumi_resource, "_get_stack_trace", None)
    if sdk_stack_trace is not None:
        pulumi_resource._get_stack_trace = _stack_trace  # type: ignore[attr-defined]
    try:
        _sync_await(run_pulumi_func(run))
    finally:
        if sdk_stack_trace is not None:
            pulumi_resource._get_stack_trace = sdk_stack_trace  # type: ignore[attr-defined]
        if frozen:
            gc.enable()
        gc.unfreeze()
    identities: dict[str, str] = {}
    for urn, reg in monitor.get_registered_resources().items():
        for value in (reg.id, reg.state.get("arn"), reg.state.get("bucket"), reg.state.get("name")):
            if isinstance(value, str) and len(value) > 8:
                identities.setdefault(value, urn)
    return Manifest(project, stack, monitor.records, _plain(outputs), identities, messages)


class _Collect(logging.Handler):
    """Keeps the program's ``pulumi.log`` messages (the mock engine hands them to a logger)."""

    def __init__(self, into: list[str]):
        super().__init__(logging.INFO)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"{record.levelname.lower()}: {record.getMessage()}")


def synth_keys(stack: str, config_keys: dict[str, Any], region: str, monitor: RecordingMonitor | None = None) -> Manifest:
    """Run the real program for ``stack`` with ``config_keys`` (the ``config:`` map of a stack file)."""
    return run_program(
        lambda: runpy.run_path(str(PROGRAM), run_name="__main__"), stack=stack, region=region, config=config_keys, monitor=monitor
    )


def synth_file(path: Path) -> tuple["StackConfig", Manifest]:
    """Validate a stack file, then synth it. Raises ``ConfigError`` before anything is registered."""
    from infra.config import config_from_keys, read_stack_keys

    keys = read_stack_keys(path)
    cfg = config_from_keys(keys, str(path))
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    return cfg, synth_keys(stack, keys, cfg.region)


class ProgramError(Exception):
    """A program directory that cannot be synthesized (no Pulumi.yaml, no entry point, no stack file)."""


def synth_program(program_dir: Path, stack: str) -> Manifest:
    """Synthesize any Pulumi Python program directory offline (an example, a user's program that imports the
    library): its ``Pulumi.yaml`` names the project and entry point (``main``, default the directory), its
    ``Pulumi.<stack>.yaml`` (beside it, or under ``stackConfigDir``) gives the config; the region is ``aws:region``."""
    import yaml

    program_dir = program_dir.resolve()
    project_file = program_dir / "Pulumi.yaml"
    if not project_file.is_file():
        raise ProgramError(f"{program_dir}: no Pulumi.yaml (a Pulumi program directory has one)")
    project = yaml.safe_load(project_file.read_text()) or {}
    runtime = project.get("runtime")
    if (runtime.get("name") if isinstance(runtime, dict) else runtime) != "python":
        raise ProgramError(f"{project_file}: runtime {runtime!r}; only Python programs can be synthesized")
    main = program_dir / str(project.get("main") or ".")
    entry = main / "__main__.py" if main.is_dir() else main
    if not entry.is_file():
        raise ProgramError(f"{project_file}: no entry point {entry} (main: {project.get('main') or '.'})")
    stack_file = program_dir / str(project.get("stackConfigDir") or ".") / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise ProgramError(f"{program_dir}: no stack file {stack_file.name} for stack {stack!r}")
    keys = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    region = str(keys.get("aws:region", "us-east-1"))

    def run() -> None:
        import sys

        sys.path.insert(0, str(entry.parent))  # as the Pulumi Python host does: the program's own modules import
        try:
            runpy.run_path(str(entry), run_name="__main__")
        except (ValueError, TypeError, KeyError, pulumi.RunError) as e:
            # A program's own mistake (bad args, a refused config): where it is and what was wrong, no traceback.
            import traceback

            frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).is_relative_to(program_dir)]
            where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(entry)
            raise ProgramError(f"{where}: {type(e).__name__}: {e}") from None
        finally:
            sys.path.remove(str(entry.parent))

    return run_program(run, stack=stack, region=region, config=keys, project=str(project.get("name") or program_dir.name))


# ---------------------------------------------------------------------------------------------------------------
# Views of a manifest


def mermaid(manifest: Manifest) -> str:
    """Architecture diagram: components nested as subgraphs, arrows where one uses another's resource."""
    by_urn = {r["urn"]: r for r in manifest.resources}
    components = [r for r in manifest.resources if not r["custom"]]

    def component_of(urn: str | None) -> str | None:
        while urn is not None:
            r = by_urn.get(urn)
            if r is None:
                return None
            if not r["custom"]:
                return urn
            urn = r["parent"]
        return None

    ids = {r["urn"]: f"c{i}" for i, r in enumerate(components)}
    lines = ["flowchart LR"]
    children: dict[str | None, list[dict]] = {}
    for c in components:
        children.setdefault(component_of(c["parent"]), []).append(c)

    def emit(parent: str | None, depth: int) -> None:
        for c in children.get(parent, []):
            pad = "  " * depth
            label = f"{c['name']}<br/><small>{c['type']}</small>"
            if children.get(c["urn"]):
                lines.append(f'{pad}subgraph {ids[c["urn"]]}["{label}"]')
                emit(c["urn"], depth + 1)
                lines.append(f"{pad}end")
            else:
                lines.append(f'{pad}{ids[c["urn"]]}["{label}"]')

    emit(None, 1)
    # A link: a resource of one component carries the ARN, id or name of a resource of another.
    identity = manifest.identities
    edges = set()
    for r in manifest.resources:
        if not r["custom"]:
            continue
        src = component_of(r["urn"])
        for value in _strings(r["inputs"]):
            owner = identity.get(value)
            dst = component_of(owner) if owner else None
            if src and dst and src != dst and src in ids and dst in ids:
                edges.add((ids[src], ids[dst]))
    lines += [f"  {a} --> {b}" for a, b in sorted(edges)]
    return "\n".join(lines) + "\n"


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)

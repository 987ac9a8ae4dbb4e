"""Static checks of a state machine definition (ASL, JSONPath) for what Step Functions fails at run time.

AWS fails an execution with ``States.Runtime`` when a path a state reads does not exist, and no ``Catch``
(``States.ALL`` included) can catch that (LocalStack lets ``States.ALL`` catch it and takes a Choice's Default
on a missing field, so a LocalStack run cannot show it). ``path_problems`` proves, for every edge into every
state, that each JSONPath the state reads exists there: it follows what each state writes (Pass parameters,
a Task's result as its botocore output shape guarantees it, a Catch's ``{"Error", "Cause"}``) and what a
Choice rule proves with ``IsPresent`` on the way to its ``Next``.

What it does not prove: array indexes and intrinsic arguments beyond their paths (``States.ArrayGetItem(a, i)``
with ``i`` out of range), or the JSON inside a string (``States.StringToJson``): those need a guard in the flow,
and the scenarios run them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Union

import botocore.session

LEAF = "leaf"
"""A value that is present, with nothing known about what is inside it."""
Node = Union[str, dict]  # LEAF, or {key: Node} of the members known to be present (int keys: array items)

# Task results botocore marks optional but the service always returns (documented), by (service, operation, member).
ALWAYS_RETURNED = {
    ("s3", "GetObject", "Body"),  # the object's content: the payload of every successful GetObject
}
# Splits of context values whose format is fixed: at least this many items.
CONTEXT_SPLITS = {
    "States.StringSplit($$.Execution.StartTime, '-T:.Z+')": 6,  # ISO 8601: year, month, day, hour, minute, second
    "States.StringSplit(States.UUID(), '-')": 5,  # a UUID's five groups
}
SERVICES = {"sfn": "stepfunctions", "s3": "s3", "sagemaker": "sagemaker", "sns": "sns", "cloudwatch": "cloudwatch", "states": "stepfunctions"}
SYNC_DESCRIBE = {"CreateTrainingJob": "DescribeTrainingJob", "CreateProcessingJob": "DescribeProcessingJob"}
_SESSION = botocore.session.get_session()


@dataclass(frozen=True)
class Problem:
    state: str
    source: str
    path: str
    where: str

    def __str__(self) -> str:
        return f"{self.state}: {self.where} reads {self.path}, which is not present when entered from {self.source}"


def _pascal(name: str) -> str:
    return name[0].upper() + name[1:]


def operation(resource: str):
    """``arn:aws:states:::sagemaker:createTrainingJob.sync`` or ``...:::aws-sdk:s3:getObject`` → botocore model."""
    parts = resource.split(":")
    service, action = (parts[6], parts[7]) if parts[5] == "aws-sdk" else (parts[5], parts[6])
    model = _SESSION.get_service_model(SERVICES[service])
    return model.operation_model(_pascal(action.removesuffix(".sync"))), action.endswith(".sync")


def _output_node(shape, service: str, op: str, depth: int = 0) -> Node:
    if shape is None or shape.type_name != "structure" or depth > 6:
        return LEAF
    required = set(shape.required_members) | {m for (s, o, m) in ALWAYS_RETURNED if (s, o) == (service, op)}
    return {_pascal(m): _output_node(shape.members[m], service, op, depth + 1) for m in shape.members if m in required}


def task_result(resource: str) -> Node:
    """What a Task's result guarantees: the required members of its API's output (the Describe call's for .sync)."""
    op, sync = operation(resource)
    model = op.service_model
    if sync and op.name in SYNC_DESCRIBE:
        op = model.operation_model(SYNC_DESCRIBE[op.name])
    service = next(k for k, v in SERVICES.items() if v == model.service_name)
    return _output_node(op.output_shape, service if service != "states" else "sfn", op.name)


# --- paths ---------------------------------------------------------------------------------------------------------
_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]|(\[\?\(.*?\)\]|\[\*\]|\.\*|\.\.)")


def parse_path(path: str) -> list[str | int] | None:
    """``$.a.b[0].c`` → ``['a', 'b', 0, 'c']``; stops at a filter or wildcard (what follows may match nothing)."""
    if path == "$":
        return []
    if not path.startswith("$"):
        return None
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise ValueError(f"cannot read JSONPath {path!r} at {path[pos:]!r}")
        if m.group(4):
            return steps
        steps.append(m.group(1) or (int(m.group(2)) if m.group(2) else m.group(3)))
        pos = m.end()
    return steps


def paths_in(expr: str) -> list[str]:
    """The JSONPaths an intrinsic function (or a plain path) reads; ``$$`` (the context object) is always there."""
    if not expr.startswith("States."):
        return [] if expr.startswith("$$") else [expr]
    found, i, quoted = [], 0, False
    while i < len(expr):
        c = expr[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            quoted = not quoted
        elif c == "$" and not quoted:
            j = i
            depth = 0
            while j < len(expr) and (depth or expr[j] not in ",) "):
                depth += expr[j] == "["
                depth -= expr[j] == "]"
                j += 1
            if not expr[i:j].startswith("$$"):
                found.append(expr[i:j])
            i = j
            continue
        i += 1
    return found


def get(node: Node, path: str) -> Node | None:
    steps = parse_path(path)
    if steps is None:
        return None
    for step in steps:
        if not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    return node


def meet(a: Node | None, b: Node | None) -> Node | None:
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: meet(a[k], b[k]) for k in a if k in b}
    return LEAF


def with_path(node: Node, path: str | None, value: Node) -> Node:
    """``node`` after a ResultPath write (None: discarded)."""
    if path is None:
        return node
    steps = parse_path(path)
    assert steps is not None, path
    if not steps:
        return value
    root = dict(node) if isinstance(node, dict) else {}
    cur = root
    for step in steps[:-1]:
        nxt = cur.get(step)
        cur[step] = dict(nxt) if isinstance(nxt, dict) else {}
        cur = cur[step]
    cur[steps[-1]] = value
    return root


def _constant(value: Any) -> Node:
    if isinstance(value, dict):
        return {k: _constant(v) for k, v in value.items()}
    if isinstance(value, list):
        return {i: _constant(v) for i, v in enumerate(value)}
    return LEAF


def evaluate(expr: str, node: Node) -> Node:
    if expr.startswith("$$"):
        return LEAF
    if expr.startswith("States.JsonMerge("):
        a, b = (get(node, p) for p in paths_in(expr)[:2])
        merged = dict(a) if isinstance(a, dict) else {}
        if isinstance(b, dict):
            merged.update(b)
        return merged
    if expr in CONTEXT_SPLITS:
        return {i: LEAF for i in range(CONTEXT_SPLITS[expr])}
    if expr.startswith("States."):
        return LEAF
    if any(t in expr for t in ("[?(", "[*]", "..")):
        return LEAF  # an array of whatever matched
    found = get(node, expr)
    return found if found is not None else LEAF


def template(params: Any, node: Node) -> tuple[Node, list[tuple[str, str]]]:
    """(the node a Parameters/ResultSelector template builds, [(where, path read)])."""
    reads: list[tuple[str, str]] = []

    def build(value: Any, where: str) -> Node:
        if isinstance(value, dict):
            out: dict = {}
            for k, v in value.items():
                if k.endswith(".$"):
                    reads.extend((f"{where}.{k}", p) for p in paths_in(v))
                    out[k[:-2]] = evaluate(v, node)
                else:
                    out[k] = build(v, f"{where}.{k}")
            return out
        if isinstance(value, list):
            return {i: build(v, f"{where}[{i}]") for i, v in enumerate(value)}
        return LEAF

    return build(params, ""), reads


# --- states --------------------------------------------------------------------------------------------------------
_PATH_OPERATORS = ("Path",)


def _rule_reads(rule: dict, known: Node, where: str) -> tuple[list[tuple[str, str, Node]], Node]:
    """(reads of a Choice rule, each with the node it is read against; the node its Next is entered with)."""
    reads: list[tuple[str, str, Node]] = []
    if "And" in rule:
        for i, sub in enumerate(rule["And"]):
            sub_reads, known = _rule_reads(sub, known, f"{where}.And[{i}]")
            reads += sub_reads
        return reads, known
    if "Or" in rule or "Not" in rule:
        for i, sub in enumerate(rule.get("Or", [rule.get("Not")])):
            reads += _rule_reads(sub, known, f"{where}.Or[{i}]")[0]
        return reads, known
    variable = rule["Variable"]
    if rule.get("IsPresent") is True:
        return reads, _present(known, variable)
    if "IsPresent" in rule:
        return reads, known
    reads.append((where, variable, known))
    for op, value in rule.items():
        if op.endswith(_PATH_OPERATORS) and op != "Variable" and isinstance(value, str):
            reads.append((f"{where}.{op}", value, known))
    return reads, known


def _present(node: Node, path: str) -> Node:
    steps = parse_path(path)
    if not steps:
        return node
    if get(node, path) is not None:
        return node
    return with_path(node, "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps), LEAF)


def transitions(name: str, state: dict, node: Node, scope: dict) -> Iterator[tuple[str, Node, list[tuple[str, str, Node]]]]:
    """(next state, node it is entered with, reads this state makes [(where, path, node read against)])."""
    kind = state["Type"]
    reads: list[tuple[str, str, Node]] = []
    for key in ("InputPath", "OutputPath"):
        if isinstance(state.get(key), str):
            reads.append((key, state[key], node))
    if kind == "Choice":
        for i, rule in enumerate(state["Choices"]):
            rule_reads, entered = _rule_reads(rule, node, f"Choices[{i}]")
            reads += rule_reads
            yield rule["Next"], entered, reads if i == 0 else rule_reads
        yield state["Default"], node, []
        return
    if kind in ("Succeed", "Fail"):
        for key in ("CausePath", "ErrorPath"):
            if key in state:
                reads += [(key, p, node) for p in paths_in(state[key])]
        yield "", node, reads
        return
    if kind == "Wait":
        for key in ("SecondsPath", "TimestampPath"):
            if key in state:
                reads.append((key, state[key], node))
        out = node
    else:
        if "Parameters" in state and kind != "Map":
            built, param_reads = template(state["Parameters"], node)
            reads += [(f"Parameters{w}", p, node) for w, p in param_reads]
        else:
            built = node
        if kind == "Pass":
            result = _constant(state["Result"]) if "Result" in state else built
        elif kind == "Task":
            result = task_result(state["Resource"])
        elif kind == "Parallel":
            result = {i: branch_output(b, node) for i, b in enumerate(state["Branches"])}
        elif kind == "Map":
            reads.append(("ItemsPath", state.get("ItemsPath", "$"), node))
            result = LEAF  # an array with an item per input item: nothing guaranteed inside
        else:
            raise ValueError(f"{name}: state type {kind} is not checked")
        if "ResultSelector" in state:
            selected, selector_reads = template(state["ResultSelector"], result)
            reads += [(f"ResultSelector{w}", p, result) for w, p in selector_reads]
            result = selected
        out = with_path(node, state.get("ResultPath", "$"), result)
    for catcher in state.get("Catch", []):
        yield catcher["Next"], with_path(node, catcher.get("ResultPath", "$"), {"Error": LEAF}), []
    yield state.get("Next", ""), out, reads


def _flow(scope: dict, start_node: Node) -> tuple[dict[str, Node], dict[str, list[tuple[str, Node]]]]:
    """Fixpoint of the node each state is entered with (meet over its ways in)."""
    entered: dict[str, Node] = {scope["StartAt"]: start_node}
    edges: dict[str, dict[str, Node]] = {}
    todo = [scope["StartAt"]]
    while todo:
        name = todo.pop()
        for nxt, node, _ in transitions(name, scope["States"][name], entered[name], scope):
            if not nxt:
                continue
            edges.setdefault(nxt, {})[name] = node
            new = node
            for other in edges[nxt].values():
                new = meet(new, other)
            if nxt not in entered or new != entered[nxt]:
                entered[nxt] = new
                todo.append(nxt)
    return entered, {k: list(v.items()) for k, v in edges.items()}


def branch_output(branch: dict, node: Node) -> Node:
    entered, _ = _flow(branch, node)
    out: Node | None = None
    for name, state in branch["States"].items():
        if state["Type"] == "Succeed" and name in entered:
            out = meet(out, entered[name])
    return out if out is not None else LEAF


def path_problems(definition: dict, input_node: Node = LEAF) -> list[Problem]:
    """Every JSONPath read that is not proven present on some way into its state (Parallel branches included)."""
    problems: list[Problem] = []

    def check(scope: dict, start: Node, label: str) -> None:
        entered, edges = _flow(scope, start)
        ways = {scope["StartAt"]: [(label, start)], **{k: v for k, v in edges.items()}}
        for name, incoming in ways.items():
            state = scope["States"][name]
            for source, node in incoming:
                for _, _, reads in transitions(name, state, node, scope):
                    for where, path, against in reads:
                        if get(against, path) is None:
                            problems.append(Problem(name, source, path, where))
            if state["Type"] == "Parallel" and name in entered:
                for branch in state["Branches"]:
                    check(branch, entered[name], f"{name} (start of branch)")
            if state["Type"] == "Map" and name in entered:
                item_input, item_reads = template(state.get("ItemSelector", {}), entered[name])
                for where, path in item_reads:
                    if get(entered[name], path) is None:
                        problems.append(Problem(name, "its input", path, f"ItemSelector{where}"))
                check(state["ItemProcessor"], item_input if "ItemSelector" in state else LEAF, f"{name} (each item)")

    check(definition, input_node, "the execution input")
    return sorted(set(problems), key=str)


def uncatchable_problems(definition: dict) -> list[str]:
    """Retriers and catchers that name ``States.Runtime`` (or rely on it with ``States.ALL``): AWS never hands it over.

    The only way to be safe from States.Runtime is to read only what is present (``path_problems``); a
    ``ErrorEquals`` naming it documents a belief that is false on AWS.
    """
    found = []

    def walk(scope: dict) -> None:
        for name, state in scope["States"].items():
            for kind in ("Retry", "Catch"):
                for i, handler in enumerate(state.get(kind, [])):
                    if "States.Runtime" in handler["ErrorEquals"]:
                        found.append(f"{name}.{kind}[{i}] names States.Runtime, which Step Functions never retries or catches")
            for branch in [*state.get("Branches", []), *([state["ItemProcessor"]] if "ItemProcessor" in state else [])]:
                walk(branch)

    walk(definition)
    return found

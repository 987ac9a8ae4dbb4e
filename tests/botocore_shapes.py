"""Checking a value against botocore's service model of an API (the CT flow's Task parameters, a job request):
shared by the tests that validate what the stack sends to AWS."""

from __future__ import annotations

from typing import Any

import botocore.session
import regex

SESSION = botocore.session.get_session()
# Step Functions service names in aws-sdk ARNs → botocore service names.
SERVICES = {"sfn": "stepfunctions", "s3": "s3", "sagemaker": "sagemaker", "sns": "sns", "cloudwatch": "cloudwatch"}


def operation(resource: str):
    """``arn:aws:states:::sagemaker:createTrainingJob.sync`` or ``...:::aws-sdk:s3:getObject`` → botocore model."""
    parts = resource.split(":")
    service, action = (parts[6], parts[7]) if parts[5] == "aws-sdk" else (parts[5], parts[6])
    action = action.removesuffix(".sync")
    model = SESSION.get_service_model(SERVICES[service])
    return model.operation_model(action[0].upper() + action[1:])


def _pascal(name: str) -> str:
    # AWS SDK integrations take PascalCase members even where botocore's model is camelCase (Step Functions).
    return name[0].upper() + name[1:]


def problems(shape, value: Any, path: str) -> list[str]:
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {value!r}"]
        members = {_pascal(m): (m, s) for m, s in shape.members.items()}
        out, given = [], set()
        for key, item in value.items():
            dynamic = key.endswith(".$")
            name = key.removesuffix(".$")
            if _pascal(name) not in members:
                out.append(f"{path}.{name}: unknown member; {shape.name} has {', '.join(sorted(members))}")
                continue
            given.add(_pascal(name))
            if dynamic:
                if not (isinstance(item, str) and item.startswith(("$", "States."))):
                    out.append(f"{path}.{key}: a .$ key needs a JSONPath or intrinsic, got {item!r}")
            else:
                out += problems(members[_pascal(name)][1], item, f"{path}.{name}")
        for required in shape.required_members:
            if _pascal(required) not in given:
                out.append(f"{path}: required member {required} is missing")
        return out
    if t == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {value!r}"]
        out = []
        if "min" in shape.metadata and len(value) < shape.metadata["min"]:
            out.append(f"{path}: fewer than {shape.metadata['min']} items")
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            out.append(f"{path}: more than {shape.metadata['max']} items")
        for i, item in enumerate(value):
            out += problems(shape.member, item, f"{path}[{i}]")
        return out
    if t == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {value!r}"]
        out = []
        for key, item in value.items():
            if key.endswith(".$"):
                continue
            out += problems(shape.key, key, f"{path} key")
            out += problems(shape.value, item, f"{path}[{key}]")
        return out
    if t == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string, got {value!r}"]
        if shape.enum and value not in shape.enum:
            return [f"{path}: {value!r} is not one of {shape.enum}"]
        lo, hi = shape.metadata.get("min", 0), shape.metadata.get("max")
        if len(value) < lo or (hi is not None and len(value) > hi):
            return [f"{path}: length {len(value)} outside {lo}..{hi}"]
        pattern = shape.metadata.get("pattern")
        # botocore's patterns are Java-style (\p{L} classes, a trailing "${1,256}" length): the length is checked above.
        if pattern and not regex.fullmatch(regex.sub(r"\$\{\d+,\d+\}$", "", pattern).removeprefix("^").removesuffix("$"), value):
            return [f"{path}: {value!r} does not match {pattern}"]
        return []
    if t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: expected an integer, got {value!r}"]
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return [f"{path}: {value} outside {lo}..{hi}"]
        return []
    if t in ("float", "double"):
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else [f"{path}: expected a number, got {value!r}"]
    if t == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean, got {value!r}"]
    if t in ("timestamp", "blob"):
        return [] if isinstance(value, str) else [f"{path}: expected a string, got {value!r}"]
    return [f"{path}: unhandled shape type {t}"]

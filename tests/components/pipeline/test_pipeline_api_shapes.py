"""Every Task's Parameters validate against the botocore service model of the API it calls.

Keys ending in ``.$`` are filled at run time: they must name a real member (and count as present when
the member is required), but their JSONPath values are not type-checked. Everything else must have the
member's type, enum value and bounds, and required members must be there. The arrays Pass states build
for Evaluate (its inputs and arguments) are checked against the same shapes.
"""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
import regex
from pipeline_fixtures import make_spec, own_code_variants

from components.pipeline.definition import build_definition, task_states

VPC = {"subnet_ids": ("subnet-0123456789abcdef0",), "security_group_ids": ("sg-0123456789abcdef0",)}
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


VARIANTS = {
    "dev": {},
    "prod-manual-spot-vpc": {"approval": "manual", "spot": True, "max_wait_seconds": 7200, **VPC},
    "pinned": {"deploy_enabled": False},
    **own_code_variants(),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_task_parameters_fit_the_api_shape(variant):
    d = build_definition(make_spec(**VARIANTS[variant]))
    tasks = task_states(d)
    assert len(tasks) >= 12
    found = []
    for name, state in tasks.items():
        op = operation(state["Resource"])
        found += problems(op.input_shape, state["Parameters"], f"{name}({op.name})")
    assert found == []


def test_evaluate_inputs_built_by_pass_states_fit_the_processing_shapes():
    d = build_definition(make_spec(**VPC))
    shape = operation("arn:aws:states:::sagemaker:createProcessingJob.sync").input_shape
    for state in ("CompareWithProduction", "NoProductionModel"):
        built = d["States"][state]["Parameters"]
        assert problems(shape.members["ProcessingInputs"], built["inputs"], f"{state}.inputs") == []
        assert problems(shape.members["AppSpecification"].members["ContainerArguments"], built["arguments"], f"{state}.arguments") == []


def test_the_validator_catches_what_it_claims():
    shape = operation("arn:aws:states:::sagemaker:createTrainingJob.sync").input_shape
    good = task_states(build_definition(make_spec()))["Train"]["Parameters"]
    assert problems(shape, good, "Train") == []
    bad = {**good, "ResourceConfig": {**good["ResourceConfig"], "InstanceCount": "1"}, "Bogus": 1}
    bad.pop("RoleArn")
    bad["AlgorithmSpecification"] = {**good["AlgorithmSpecification"], "TrainingInputMode": "Stream"}
    found = "\n".join(problems(shape, bad, "Train"))
    assert "Train.Bogus: unknown member" in found
    assert "required member RoleArn is missing" in found
    assert "InstanceCount: expected an integer" in found
    assert "'Stream' is not one of" in found
    dynamic = {**good, "RoleArn.$": "not a path"}
    dynamic.pop("RoleArn")
    assert problems(shape, dynamic, "Train") == ["Train.RoleArn.$: a .$ key needs a JSONPath or intrinsic, got 'not a path'"]

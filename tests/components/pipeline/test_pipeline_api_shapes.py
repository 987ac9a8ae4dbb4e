"""Every Task's Parameters validate against the botocore service model of the API it calls.

Keys ending in ``.$`` are filled at run time: they must name a real member (and count as present when
the member is required), but their JSONPath values are not type-checked. Everything else must have the
member's type, enum value and bounds, and required members must be there. The arrays Pass states build
for Evaluate (its inputs and arguments) are checked against the same shapes.
"""

from __future__ import annotations

import pytest
from botocore_shapes import operation, problems
from pipeline_fixtures import make_spec, own_code_variants

from components.pipeline.definition import build_definition, task_states

VPC = {"subnet_ids": ("subnet-0123456789abcdef0",), "security_group_ids": ("sg-0123456789abcdef0",)}
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

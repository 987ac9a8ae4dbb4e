"""The first deployment away from the bootstrap placeholder cannot be rolled back by the placeholder's own 503s.

The placeholder answers 503 by design, and the endpoint's 5xx-rate alarm is a rollback alarm: traffic to the
placeholder can hold it in ALARM when the first trained model goes in. The CT flow recognises the placeholder's
configuration by its name prefix and deploys that one time without the 5xx alarm; every deployment passes its
DeploymentConfig explicitly, so the reduced one is never retained for a later deployment.
"""

from __future__ import annotations

import json

import pytest
from helpers import only

SFN = "aws:sfn/stateMachine:StateMachine"


def states(m) -> dict:
    return json.loads(only([r for r in m.of_type(SFN) if "pipeline-churn-" in r["urn"]])["inputs"]["definition"])["States"]


def deploy_states(m) -> dict:
    """The deploy branch's states (they live inside the flow's Parallel/branch structure)."""
    found: dict = {}

    def walk(ss: dict) -> None:
        for name, st in ss.items():
            found[name] = st
            for branch in st.get("Branches", []):
                walk(branch["States"])
            if "ItemProcessor" in st:
                walk(st["ItemProcessor"]["States"])
            if "Iterator" in st:
                walk(st["Iterator"]["States"])

    walk(states(m))
    return found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_first_deploy_from_the_placeholder_leaves_out_only_the_5xx_alarm(manifests, stack):
    m = manifests[stack]
    endpoint = f"mlops-{stack}-churn"
    s = deploy_states(m)
    every = s["UpdateEndpoint"]["Parameters"]
    first = s["UpdateEndpointFromBootstrap"]["Parameters"]
    for params in (every, first):
        assert "RetainDeploymentConfig" not in params, "an explicit config every time: the reduced one is never retained"
    alarms = lambda p: [a["AlarmName"] for a in p["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]  # noqa: E731
    assert alarms(every) == [f"{endpoint}-5xx-rate", f"{endpoint}-latency-p99"]
    assert alarms(first) == [f"{endpoint}-latency-p99"]
    assert every["DeploymentConfig"]["BlueGreenUpdatePolicy"] == first["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    # The same guardrails Pulumi sets on the endpoint itself.
    live = only([r for r in m.of_type("aws:sagemaker/endpoint:Endpoint") if "endpoint-churn-" in r["urn"]])["inputs"]["deploymentConfig"]
    assert [a["alarmName"] for a in live["autoRollbackConfiguration"]["alarms"]] == alarms(every)
    assert live["blueGreenUpdatePolicy"]["terminationWaitInSeconds"] == every["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"]


def test_the_flow_recognises_the_placeholder_by_the_prefix_pulumi_names_it_with(manifests):
    m = manifests["prod"]
    config = only([r for r in m.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration") if "endpoint-churn-" in r["urn"]])["inputs"]
    [rule] = [c for c in deploy_states(m)["EndpointReady"]["Choices"] if c.get("Next") == "UpdateEndpointFromBootstrap"]
    patterns = [c["StringMatches"] for c in rule["And"] if "StringMatches" in c]
    assert patterns == [config["namePrefix"] + "*"] and config["namePrefix"] == "mlops-prod-churn-boot-"
    assert {"Variable": "$.endpoint.EndpointConfigName", "IsPresent": True} in rule["And"]
    # A configuration of the flow's own (run-named) is not the placeholder's.
    assert not "mlops-prod-churn-cfg-20261201-000000-abcd-0".startswith(config["namePrefix"])

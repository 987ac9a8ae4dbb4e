"""The private VPC staging and prod create (``mlops:vpc.create``), asserted on their synthesized manifests:
what exists, what does not (internet and NAT gateways), and that every VPC consumer names the created subnets."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import pytest
from helpers import only, policy

VPC_STACKS = ("staging", "prod")
INTERFACE = {"sagemaker.api", "sagemaker.runtime", "sts", "logs", "monitoring", "ecr.api", "ecr.dkr", "kms", "states", "xray"}


def ids(manifest, token: str) -> dict[str, str]:
    """Resource name → the id the (mock) provider gave it."""
    by_urn = {r["urn"]: r["name"] for r in manifest.of_type(token)}
    return {by_urn[urn]: value for value, urn in manifest.identities.items() if urn in by_urn and re.fullmatch(r"[a-z]+-[0-9a-f]{17}", value)}


def subnet_ids(manifest) -> set[str]:
    return set(ids(manifest, "aws:ec2/subnet:Subnet").values())


def workload_sg(manifest) -> str:
    return ids(manifest, "aws:ec2/securityGroup:SecurityGroup")["network-sagemaker-sg"]


def find(value: Any, key: str) -> Iterator[Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                yield v
            yield from find(v, key)
    elif isinstance(value, list):
        for v in value:
            yield from find(v, key)


@pytest.mark.parametrize("stack", VPC_STACKS)
def test_private_subnets_in_distinct_zones_without_internet_or_nat(manifests, stack):
    m = manifests[stack]
    vpc = only(m.of_type("aws:ec2/vpc:Vpc"))["inputs"]
    assert vpc["enableDnsSupport"] and vpc["enableDnsHostnames"]
    subnets = [r["inputs"] for r in m.of_type("aws:ec2/subnet:Subnet")]
    assert len(subnets) == 2 and len({s["availabilityZone"] for s in subnets}) == 2
    assert all(s["mapPublicIpOnLaunch"] is False for s in subnets)
    for token in ("aws:ec2/internetGateway:InternetGateway", "aws:ec2/internetGatewayAttachment:InternetGatewayAttachment",
                  "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway", "aws:ec2/natGateway:NatGateway",
                  "aws:ec2/eip:Eip", "aws:ec2/route:Route"):
        assert m.of_type(token) == [], token
    tables = m.of_type("aws:ec2/routeTable:RouteTable")
    assert len(tables) == 2 and all(not t["inputs"].get("routes") for t in tables)
    associated = {a["inputs"]["subnetId"] for a in m.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")}
    assert associated == subnet_ids(m)
    # The default group (all traffic among its members) is taken over with no rules.
    default = only(m.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"))["inputs"]
    assert not default.get("ingress") and not default.get("egress")


@pytest.mark.parametrize("stack", VPC_STACKS)
def test_endpoints_interface_with_private_dns_and_s3_gateway_limited_to_the_stack(manifests, stack):
    m = manifests[stack]
    endpoints = [r["inputs"] for r in m.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")]
    region = m.outputs["region"]
    interface = {e["serviceName"].removeprefix(f"com.amazonaws.{region}."): e for e in endpoints if e["vpcEndpointType"] == "Interface"}
    assert set(interface) == INTERFACE
    endpoints_sg = ids(m, "aws:ec2/securityGroup:SecurityGroup")["network-endpoints-sg"]
    for service, e in interface.items():
        assert e["privateDnsEnabled"] is True, service
        assert set(e["subnetIds"]) == subnet_ids(m) and e["securityGroupIds"] == [endpoints_sg], service
    gateway = only([e for e in endpoints if e["vpcEndpointType"] == "Gateway"])
    assert gateway["serviceName"] == f"com.amazonaws.{region}.s3"
    assert set(gateway["routeTableIds"]) == set(ids(m, "aws:ec2/routeTable:RouteTable").values())
    statements = json.loads(gateway["policy"])["Statement"]
    buckets = {m.outputs[f"{role}_bucket_name"] for role in ("data", "models", "capture")}
    named = {r.split(":::", 1)[1].split("/", 1)[0] for s in statements for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
    assert named == buckets | {f"prod-{region}-starport-layer-bucket"}
    assert all(s["Effect"] == "Allow" and "*" not in s["Action"] and "s3:*" not in s["Action"] for s in statements)


@pytest.mark.parametrize("stack", VPC_STACKS)
def test_security_groups_allow_only_https_to_endpoints_and_s3(manifests, stack):
    m = manifests[stack]
    groups = ids(m, "aws:ec2/securityGroup:SecurityGroup")
    work, endpoints = groups["network-sagemaker-sg"], groups["network-endpoints-sg"]
    assert all(not g["inputs"].get("ingress") and not g["inputs"].get("egress") for g in m.of_type("aws:ec2/securityGroup:SecurityGroup"))
    egress = [r["inputs"] for r in m.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")]
    ingress = [r["inputs"] for r in m.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
    assert all("cidrIpv4" not in r and "cidrIpv6" not in r for r in egress + ingress), "no rule names an address range"
    https = [r for r in egress if r["ipProtocol"] == "tcp"]
    assert all(r["fromPort"] == r["toPort"] == 443 and r["securityGroupId"] == work for r in https)
    assert {r.get("referencedSecurityGroupId") or r.get("prefixListId")[:3] for r in https} == {endpoints, "pl-"}
    # All protocols only between members of the workload group (distributed training), nowhere else.
    wide = [r for r in egress + ingress if r["ipProtocol"] == "-1"]
    assert wide and all(r["securityGroupId"] == r["referencedSecurityGroupId"] == work for r in wide)
    endpoint_in = only([r for r in ingress if r["securityGroupId"] == endpoints])
    assert (endpoint_in["referencedSecurityGroupId"], endpoint_in["fromPort"], endpoint_in["toPort"]) == (work, 443, 443)


@pytest.mark.parametrize("stack", VPC_STACKS)
def test_flow_logs_of_all_traffic_to_an_encrypted_retained_group(manifests, stack):
    m = manifests[stack]
    flow = only(m.of_type("aws:ec2/flowLog:FlowLog"))["inputs"]
    assert flow["trafficType"] == "ALL" and flow["logDestinationType"] == "cloud-watch-logs"
    group = only([g for g in m.of_type("aws:cloudwatch/logGroup:LogGroup") if g["name"] == "network-flow-logs"])
    assert flow["logDestination"].endswith(f":log-group:{group['inputs']['name']}")
    assert group["inputs"]["kmsKeyId"] == m.outputs["kms_key_arn"] and group["inputs"]["retentionInDays"] >= 365
    assert group["protect"] is True
    role = only([r for r in m.of_type("aws:iam/role:Role") if r["inputs"]["name"] == flow["iamRoleArn"].rsplit("/", 1)[1]])
    trust = policy(role, "assumeRolePolicy")["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"} and "aws:SourceAccount" in json.dumps(trust)
    assert role["inputs"]["permissionsBoundary"]


@pytest.mark.parametrize("stack", VPC_STACKS)
def test_jobs_models_and_drift_function_run_in_the_created_subnets(manifests, stack):
    m = manifests[stack]
    subnets, sg = subnet_ids(m), workload_sg(m)
    assert set(m.outputs["network"]["subnet_ids"]) == subnets
    for machine in m.of_type("aws:sfn/stateMachine:StateMachine"):
        configs = list(find(json.loads(machine["inputs"]["definition"]), "VpcConfig"))
        assert configs, machine["name"]  # training, processing jobs and the per-run models
        for c in configs:
            assert set(c["Subnets"]) == subnets and c["SecurityGroupIds"] == [sg], machine["name"]
    for model in m.of_type("aws:sagemaker/model:Model"):
        vpc = model["inputs"]["vpcConfig"]
        assert set(vpc["subnets"]) == subnets and vpc["securityGroupIds"] == [sg], model["name"]
    functions = [f for f in m.of_type("aws:lambda/function:Function") if f["name"].startswith("drift-")]
    assert functions
    for f in functions:
        assert set(f["inputs"]["vpcConfig"]["subnetIds"]) == subnets and f["inputs"]["vpcConfig"]["securityGroupIds"] == [sg]
        network = only([p for p in m.of_type("aws:iam/rolePolicy:RolePolicy") if p["name"] == f["name"].replace("-function", "-network")])
        by_sid = {s["Sid"]: s for s in policy(network)["Statement"]}
        create = by_sid["InterfacesInStackSubnets"]["Resource"]
        assert {r.rsplit("/", 1)[1] for r in create if ":subnet/" in r} == subnets
        assert [r.rsplit("/", 1)[1] for r in create if ":security-group/" in r] == [sg]
        manage = by_sid["ManageOwnInterfaces"]["Condition"]["ArnEquals"]["ec2:Subnet"]
        assert {r.rsplit("/", 1)[1] for r in manage} == subnets


@pytest.mark.parametrize("stack", VPC_STACKS)
def test_boundary_deploy_role_and_model_role_name_the_created_subnets(manifests, stack):
    m = manifests[stack]
    subnets = subnet_ids(m)
    boundary = only([p for p in m.of_type("aws:iam/policy:Policy") if p["name"] == "platform-boundary"])
    outside = {s["Sid"]: s for s in policy(boundary)["Statement"]}["NoSageMakerWorkloadOutsideStackSubnets"]
    assert set(outside["Condition"]["ForAnyValue:StringNotEquals"]["sagemaker:VpcSubnets"]) == subnets
    deploy = [s for p in m.of_type("aws:iam/policy:Policy") if p["name"].startswith("deploy-") for s in policy(p)["Statement"]]
    outside = only([s for s in deploy if s.get("Sid") == "NoSageMakerWorkloadOutsideStackSubnets"])
    assert set(outside["Condition"]["ForAnyValue:StringNotEquals"]["sagemaker:VpcSubnets"]) == subnets
    runtime = only([p for p in m.of_type("aws:iam/rolePolicy:RolePolicy") if p["name"] == "model-churn-sagemaker-runtime"])
    enis = {s["Sid"]: s for s in policy(runtime)["Statement"]}["NetworkInterfacesInStackSubnets"]
    assert {r.rsplit("/", 1)[1] for r in enis["Condition"]["ArnEquals"]["ec2:Subnet"]} == subnets


def test_dev_has_no_vpc(manifests):
    m = manifests["dev"]
    assert not [r for r in m.resources if r["type"].startswith(("aws:ec2/", "aws:vpc/"))]
    assert m.outputs["network"] is None
    assert all(not f["inputs"].get("vpcConfig") for f in m.of_type("aws:lambda/function:Function"))


def test_rejects_the_prod_vpc_without_flow_logs_or_with_an_internet_gateway(manifests):
    """The rule on the real manifest, joined the way the policy pack joins (property dependencies)."""
    import copy

    from infra.review import rules

    resources = copy.deepcopy(manifests["prod"].resources)
    assert "vpc-private-with-flow-logs" not in {v.rule.id for v in rules.evaluate(resources)}
    without_logs = [r for r in resources if r["type"] != rules.FLOW_LOG]
    assert "vpc-private-with-flow-logs" in {v.rule.id for v in rules.evaluate(without_logs)}
    vpc = only([r for r in resources if r["type"] == rules.VPC])
    gateway = {"type": rules.INTERNET_GATEWAY, "name": "igw", "urn": "urn:pulumi:prod::p::aws:ec2/internetGateway:InternetGateway::igw",
               "custom": True, "inputs": {"vpcId": "unknown"}, "property_dependencies": {"vpcId": [vpc["urn"]]}}
    found = [v for v in rules.evaluate(resources + [gateway]) if v.rule.id == "vpc-private-with-flow-logs"]
    assert found and "InternetGateway 'igw'" in found[0].message


def _network(**overrides):
    import pulumi

    from components.network.vpc import PrivateNetwork, PrivateNetworkArgs

    args = dict(name_prefix="mlops", stack="t", region="eu-west-1", account_id="123456789012", partition="aws",
                cidr="10.9.0.0/16", subnet_cidrs=("10.9.0.0/18", "10.9.64.0/18", "10.9.128.0/18"),
                bucket_arns=["arn:aws:s3:::b"], kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k",
                log_group_name="/mlops/mlops-t/vpc-flow-logs")
    args.update(overrides)
    return lambda: PrivateNetwork("net", PrivateNetworkArgs(**args), pulumi.ResourceOptions())


def test_named_zones_are_used_in_order_and_a_count_takes_the_first_available(register):
    def zones(m) -> list[str]:
        # By the subnet's own index (its name), not by registration order: the engine registers as inputs resolve.
        subnets = sorted(m.of_type("aws:ec2/subnet:Subnet"), key=lambda s: s["name"])
        return [s["inputs"]["availabilityZone"] for s in subnets]

    named = register(_network(zones=("eu-west-1c", "eu-west-1a", "eu-west-1b")), region="eu-west-1")
    assert zones(named) == ["eu-west-1c", "eu-west-1a", "eu-west-1b"]
    counted = register(_network(), region="eu-west-1")
    assert zones(counted) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert {e["inputs"]["serviceName"] for e in counted.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")} >= {"com.amazonaws.eu-west-1.s3", "com.amazonaws.eu-west-1.sts"}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"subnet_cidrs": ("10.9.0.0/17",)}, "1 subnet(s); endpoints and jobs need two or more zones"),
        ({"zones": ("eu-west-1a",)}, "1 zones for 3 subnets"),
        ({"log_group_name": ""}, "flow logs need log_group_name and kms_key_arn"),
    ],
)
def test_rejects_a_network_it_cannot_build(overrides, expected):
    with pytest.raises(ValueError, match=re.escape(expected)):
        _network(**overrides)()

"""Per-model resources in the synthesized stacks: least-privilege SageMaker role and registry group."""

from __future__ import annotations

from helpers import only, policy

from components.security.iam import ecr_repository_arn



def model_role(m):
    return only([r for r in m.of_type("aws:iam/role:Role") if "mlops:model:Model$" in r["urn"] and "::model-churn-" in r["urn"]])


def grants_of(m):
    """Every RolePolicy attached to the churn model's role, by name."""
    role = model_role(m)
    return {p["name"]: policy(p) for p in m.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == role["inputs"]["name"]}


def test_role_trusts_only_sagemaker_of_this_account(manifests):
    role = model_role(manifests["prod"])
    stmt = only(policy(role, "assumeRolePolicy")["Statement"])
    assert stmt["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert stmt["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert role["inputs"]["tags"]["mlops:model"] == "churn"
    assert "mlops:model:Model$" in role["urn"]


def test_no_managed_full_access_policies(manifests):
    for m in manifests.values():
        for attachment in m.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
            assert ":aws:policy/" not in attachment["inputs"]["policyArn"], "no AWS-managed policy is attached"
        assert not [a for a in m.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if a["inputs"]["role"] == model_role(m)["inputs"]["name"]]
        for r in m.of_type("aws:iam/role:Role"):
            assert "managedPolicyArns" not in r["inputs"] and "inlinePolicies" not in r["inputs"]


def test_bucket_access_is_scoped_to_the_models_prefixes(manifests):
    m = manifests["prod"]
    statements = [s for doc in grants_of(m).values() for s in doc["Statement"]]
    object_resources = {s["Resource"] for s in statements if any(a.startswith("s3:") and "Object" in a for a in s["Action"])}
    assert object_resources == {
        "arn:aws:s3:::mlops-prod-data-123456789012-us-east-1/churn/*",
        "arn:aws:s3:::mlops-prod-models-123456789012-us-east-1/churn/*",
        "arn:aws:s3:::mlops-prod-models-123456789012-us-east-1/code/*",
        "arn:aws:s3:::mlops-prod-capture-123456789012-us-east-1/churn/*",
    }
    writes = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert [s["Resource"] for s in writes] == ["arn:aws:s3:::mlops-prod-models-123456789012-us-east-1/churn/*"]


def test_runtime_policy_scopes_logs_metrics_images_and_key(manifests):
    m = manifests["prod"]
    doc = grants_of(m)["model-churn-sagemaker-runtime"]
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert all(r.endswith(("mlops-prod-churn*", "mlops-prod-churn*:log-stream:*")) for r in by_sid["WriteOwnJobAndEndpointLogs"]["Resource"])
    assert by_sid["PublishOwnMetrics"]["Condition"]["StringLike"]["cloudwatch:namespace"] == ["/aws/sagemaker/*", "mlops/prod/churn"]
    image = m.outputs["models"]["churn"]["training_image"]
    assert by_sid["PullFrameworkImages"]["Resource"] == [ecr_repository_arn(image)]
    assert by_sid["UseStackKey"]["Resource"] == m.outputs["kms_key_arn"]
    assert by_sid["GrantKeyToSageMakerVolumes"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    wildcard = [s for s in doc["Statement"] if s["Resource"] == "*"]
    # Prod runs in its created VPC: EC2 Describe* (no resource types) and interfaces only in the stack's subnets.
    assert {s["Sid"] for s in wildcard} == {"PublishOwnMetrics", "EcrLogin", "DescribeNetwork"}
    subnets = {f"arn:aws:ec2:us-east-1:123456789012:subnet/{s}" for s in m.outputs["network"]["subnet_ids"]}
    assert set(by_sid["NetworkInterfacesInStackSubnets"]["Condition"]["ArnEquals"]["ec2:Subnet"]) == subnets
    created = set(by_sid["CreateInterfacesInStackSubnets"]["Resource"])
    assert created == {"arn:aws:ec2:us-east-1:123456789012:network-interface/*", *subnets,
                       f"arn:aws:ec2:us-east-1:123456789012:security-group/{m.outputs['network']['security_group_id']}"}


def test_images_come_from_the_sdk_for_the_stack_region(manifests):
    from sagemaker.core import image_uris

    image = manifests["dev"].outputs["models"]["churn"]["training_image"]
    assert image == image_uris.retrieve("sklearn", region="us-east-1", version="1.9-0", image_scope="training", instance_type="ml.m5.large")
    assert ecr_repository_arn(image).startswith("arn:aws:ecr:us-east-1:") and ":repository/sagemaker-scikit-learn" in ecr_repository_arn(image)


def test_registry_group_per_model_protected_outside_dev(manifests):
    for stack, protected in (("dev", False), ("prod", True)):
        group = only([g for g in manifests[stack].of_type("aws:sagemaker/modelPackageGroup:ModelPackageGroup") if "model-churn-" in g["urn"]])
        assert group["inputs"]["modelPackageGroupName"] == f"mlops-{stack}-churn"
        assert group["protect"] is protected
        assert group["inputs"]["tags"]["mlops:model"] == "churn"


def test_code_package_in_the_manifest(manifests):
    m = manifests["prod"]
    obj = only([o for o in m.of_type("aws:s3/bucketObjectv2:BucketObjectv2") if o["name"] == "code-sourcedir"])
    assert obj["inputs"]["bucket"] == m.outputs["models_bucket_name"]
    assert obj["inputs"]["key"] == f"code/{m.outputs['code_sha256']}/sourcedir.tar.gz"
    assert m.outputs["code_package_uri"].endswith(obj["inputs"]["key"])


def test_vpc_stack_gets_network_interfaces_only_in_its_subnets():
    from infra.review.synth import synth_keys

    keys = {
        "mlops:environment": "dev",
        "mlops:region": "us-east-1",
        "mlops:vpc": {"subnet_ids": ["subnet-0123456789abcdef0"], "security_group_ids": ["sg-0123456789abcdef0"]},
        "mlops:models": {"churn": {"data_contract": "training/sample/contract.json"}},
    }
    m = synth_keys("vpc", keys, "us-east-1")
    by_sid = {s["Sid"]: s for s in grants_of(m)["model-churn-sagemaker-runtime"]["Statement"]}
    eni = by_sid["NetworkInterfacesInStackSubnets"]
    assert eni["Condition"] == {"ArnEquals": {"ec2:Subnet": ["arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0123456789abcdef0"]}}
    model = only(m.of_type("aws:sagemaker/model:Model"))["inputs"]
    assert model["vpcConfig"]["subnets"] == ["subnet-0123456789abcdef0"] and model["enableNetworkIsolation"] is True
    from infra.review.rules import evaluate

    assert list(evaluate(m.resources)) == [], "the VPC stack passes the guardrails too"
    assert "NetworkInterfacesInStackSubnets" not in {s["Sid"] for s in grants_of(manifests_dev())["model-churn-sagemaker-runtime"]["Statement"]}


def manifests_dev():
    from infra.config import STACKS_DIR
    from infra.review.synth import synth_file

    return synth_file(STACKS_DIR / "Pulumi.dev.yaml")[1]

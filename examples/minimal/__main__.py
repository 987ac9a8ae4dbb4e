"""A platform and one model: the smallest complete program built on mlops-stack's components."""

from pathlib import Path

import pulumi
import pulumi_aws as aws
import training  # the built-in recipe (scikit-learn), packaged for the model's jobs
from sagemaker.core import image_uris

from components import CodePackage, CodePackageArgs, HostedModel, HostedModelArgs, ModelImages, Platform, PlatformArgs, StackContext

region = pulumi.Config("aws").require("region")
ctx = StackContext(
    prefix=pulumi.Config().require("prefix"), stack=pulumi.get_stack(), environment="dev", region=region,
    account_id=aws.get_caller_identity_output().account_id, partition=aws.get_partition_output().partition,
)
recipe, build = Path(training.__file__).parent, Path.cwd() / ".mlops" / "build"

platform = Platform("platform", PlatformArgs(context=ctx, models=("churn",)))
code = CodePackage("code", CodePackageArgs(source_dir=recipe, bucket_name=platform.models_bucket.bucket_name,
                                           kms_key_arn=platform.kms_key_arn, build_dir=build))
image = lambda scope: image_uris.retrieve("sklearn", region=region, version="1.9-0", image_scope=scope, instance_type="ml.m5.large")  # noqa: E731
churn = HostedModel("churn", HostedModelArgs(
    context=ctx, platform=platform.ref, code=code, images=ModelImages(image("training"), image("inference")),
    contract_json=(recipe / "sample" / "contract.json").read_text(), source_dir=recipe, build_dir=build,
))

pulumi.export("endpoint_name", churn.endpoint_name)
pulumi.export("state_machine_arn", churn.state_machine_arn)

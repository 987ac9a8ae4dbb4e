"""A model of its own Pulumi project, attached to a platform another stack owns: buckets, key and topic are
references by name (``PlatformRef.from_stack``); this program creates only the model and its code package."""

from pathlib import Path

import pulumi
import training  # the built-in recipe (scikit-learn)
from sagemaker.core import image_uris

from components import CodePackage, CodePackageArgs, HostedModel, HostedModelArgs, ModelImages, PlatformRef, StackContext
from components.pipeline.config import PipelineConfig, TriggersConfig

region = pulumi.Config("aws").require("region")
owner = pulumi.Config().require_object("platform")
# The model's names fall under the platform stack's scopes (key policy, boundary, bucket writers): same prefix
# and stack name as the owner, whatever this Pulumi stack is called.
ctx = StackContext(prefix=owner["prefix"], stack=owner["stack"], environment="dev", region=region, account_id=owner["account_id"])
platform = PlatformRef.from_stack(prefix=owner["prefix"], stack=owner["stack"], region=region,
                                  account_id=owner["account_id"], key_arn=owner["key_arn"])
recipe, build = Path(training.__file__).parent, Path.cwd() / ".mlops" / "build"

# The owner's code/ prefix is written by its deploy role only: this model's package lives under its own prefix.
code = CodePackage("code", CodePackageArgs(source_dir=recipe, bucket_name=platform.models.bucket_name,
                                           kms_key_arn=platform.key.key_arn, build_dir=build, prefix="fraud/code"))
image = lambda scope: image_uris.retrieve("sklearn", region=region, version="1.9-0", image_scope=scope, instance_type="ml.m5.large")  # noqa: E731
fraud = HostedModel("fraud", HostedModelArgs(
    context=ctx, platform=platform, code=code, images=ModelImages(image("training"), image("inference")),
    contract_json=(recipe / "sample" / "contract.json").read_text(), source_dir=recipe, build_dir=build,
    pipeline=PipelineConfig(triggers=TriggersConfig(on_new_data=True)),  # retrain when data lands in fraud/train/
))

pulumi.export("endpoint_name", fraud.endpoint_name)
pulumi.export("role_arn", fraud.role_arn)

"""Pulumi components of mlops-stack. Each is a ComponentResource with a typed args model next to it.

The names below are importable from ``components`` directly; they load on first use, so that code
which only needs a config model (``components.serving.config``, used by ``mlops validate``) does
not import pulumi-aws.
"""

import importlib

_EXPORTS = {
    "CodePackage": "code_package", "CodePackageArgs": "code_package",
    "DeployIdentity": "deploy_identity",
    "DriftMonitor": "drift", "DriftMonitorArgs": "drift",
    "Model": "model", "ModelArgs": "model",
    "ModelEndpoint": "endpoint", "ModelEndpointArgs": "endpoint",
    "NotificationTopic": "notifications", "NotificationTopicArgs": "notifications",
    "ObjectLock": "secure_bucket", "SecureBucket": "secure_bucket", "SecureBucketArgs": "secure_bucket",
    "Platform": "platform", "PlatformArgs": "platform",
    "StackDashboard": "dashboard",
    "StackKey": "kms", "StackKeyArgs": "kms",
    "TrainingPipeline": "pipeline", "TrainingPipelineArgs": "pipeline",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    return getattr(importlib.import_module(f"components.{_EXPORTS[name]}"), name)

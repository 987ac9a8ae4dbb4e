"""mlops-stack's Pulumi components: a library to compose an MLOps stack on AWS.

A program composes a ``Platform`` and one ``HostedModel`` per model from one ``StackContext`` (see
``examples/minimal``). Each component is a ComponentResource with a typed args class next to it; consumers take
references (``BucketRef``, ``KeyRef``, ``TopicRef``, ``PlatformRef``), never concrete classes.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components._lazy import lazy_getattr

if TYPE_CHECKING:
    from components.code.package import CodePackage, CodePackageArgs
    from components.context import StackContext
    from components.delivery.identity import DeployIdentity, DeployIdentityArgs
    from components.model.hosted import HostedModel, HostedModelArgs, ModelImages, QualityStandard
    from components.model.registry import Model, ModelArgs
    from components.monitoring.dashboard import DashboardModel, StackDashboard
    from components.monitoring.drift import DriftCode, DriftCodeArgs, DriftMonitor, DriftMonitorArgs
    from components.monitoring.drift_config import DriftConfig
    from components.monitoring.quality import QualityMonitor, QualityMonitorArgs
    from components.monitoring.quality_config import QualityConfig
    from components.naming import ModelNames
    from components.network.vpc import PrivateNetwork, PrivateNetworkArgs
    from components.notifications.ref import TopicRef
    from components.notifications.topic import NotificationTopic, NotificationTopicArgs
    from components.pipeline.config import PipelineConfig
    from components.pipeline.pipeline import TrainingPipeline, TrainingPipelineArgs
    from components.pipeline.spec import JobResources
    from components.platform.platform import Platform, PlatformArgs
    from components.platform.ref import PlatformRef
    from components.security.key import StackKey, StackKeyArgs
    from components.security.ref import KeyRef
    from components.serving.config import EndpointConfig
    from components.serving.endpoint import ModelEndpoint, ModelEndpointArgs
    from components.storage.bucket import ObjectLock, SecureBucket, SecureBucketArgs
    from components.storage.ref import BucketRef

_EXPORTS = {
    "CodePackage": "code.package",
    "CodePackageArgs": "code.package",
    "StackContext": "context",
    "DeployIdentity": "delivery.identity",
    "DeployIdentityArgs": "delivery.identity",
    "HostedModel": "model.hosted",
    "HostedModelArgs": "model.hosted",
    "ModelImages": "model.hosted",
    "QualityStandard": "model.hosted",
    "Model": "model.registry",
    "ModelArgs": "model.registry",
    "DashboardModel": "monitoring.dashboard",
    "StackDashboard": "monitoring.dashboard",
    "DriftCode": "monitoring.drift",
    "DriftCodeArgs": "monitoring.drift",
    "DriftMonitor": "monitoring.drift",
    "DriftMonitorArgs": "monitoring.drift",
    "DriftConfig": "monitoring.drift_config",
    "QualityMonitor": "monitoring.quality",
    "QualityMonitorArgs": "monitoring.quality",
    "QualityConfig": "monitoring.quality_config",
    "ModelNames": "naming",
    "PrivateNetwork": "network.vpc",
    "PrivateNetworkArgs": "network.vpc",
    "TopicRef": "notifications.ref",
    "NotificationTopic": "notifications.topic",
    "NotificationTopicArgs": "notifications.topic",
    "PipelineConfig": "pipeline.config",
    "TrainingPipeline": "pipeline.pipeline",
    "TrainingPipelineArgs": "pipeline.pipeline",
    "JobResources": "pipeline.spec",
    "Platform": "platform.platform",
    "PlatformArgs": "platform.platform",
    "PlatformRef": "platform.ref",
    "StackKey": "security.key",
    "StackKeyArgs": "security.key",
    "KeyRef": "security.ref",
    "EndpointConfig": "serving.config",
    "ModelEndpoint": "serving.endpoint",
    "ModelEndpointArgs": "serving.endpoint",
    "ObjectLock": "storage.bucket",
    "SecureBucket": "storage.bucket",
    "SecureBucketArgs": "storage.bucket",
    "BucketRef": "storage.ref",
}

__all__ = [
    "BucketRef",
    "CodePackage",
    "CodePackageArgs",
    "DashboardModel",
    "DeployIdentity",
    "DeployIdentityArgs",
    "DriftCode",
    "DriftCodeArgs",
    "DriftConfig",
    "DriftMonitor",
    "DriftMonitorArgs",
    "EndpointConfig",
    "HostedModel",
    "HostedModelArgs",
    "JobResources",
    "KeyRef",
    "Model",
    "ModelArgs",
    "ModelEndpoint",
    "ModelEndpointArgs",
    "ModelImages",
    "ModelNames",
    "NotificationTopic",
    "NotificationTopicArgs",
    "ObjectLock",
    "PipelineConfig",
    "Platform",
    "PlatformArgs",
    "PlatformRef",
    "PrivateNetwork",
    "PrivateNetworkArgs",
    "QualityConfig",
    "QualityMonitor",
    "QualityMonitorArgs",
    "QualityStandard",
    "SecureBucket",
    "SecureBucketArgs",
    "StackContext",
    "StackDashboard",
    "StackKey",
    "StackKeyArgs",
    "TopicRef",
    "TrainingPipeline",
    "TrainingPipelineArgs",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)

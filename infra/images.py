"""Container images from the SageMaker SDK's own registry data (``sagemaker.core.image_uris``).

Never a hard-coded account id: the SDK maps each region to the account that hosts the framework
images. Imported lazily because ``sagemaker.core`` takes ~1.4 s to import. A model names its framework
(``framework: {name, version}``; the built-in recipe: scikit-learn) or brings its own ECR images (``images``).
The platform's own steps run in :data:`infra.frameworks.PLATFORM_FRAMEWORK`'s image whatever the model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from infra.config import ConfigError, FrameworkConfig, ImagesConfig, StackConfig
from infra.frameworks import PLATFORM_FRAMEWORK

FRAMEWORK = PLATFORM_FRAMEWORK[0]


@dataclass(frozen=True)
class ModelImages:
    training: str
    inference: str
    platform: str = ""
    """The image of the platform's steps (validation, baseline statistics, the built-in evaluate, drift processing)."""
    platform_inference: str = ""
    """The platform's serving image (the endpoint's bootstrap placeholder runs the platform's code)."""
    own: bool = False
    """The images are the model's own (ECR, bring your own container)."""

    @property
    def all(self) -> list[str]:
        """Every image the model's role pulls (each repository once)."""
        return list(dict.fromkeys(i for i in (self.training, self.inference, self.platform, self.platform_inference) if i))


@cache
def framework_image(framework: str, region: str, version: str, scope: str, instance_type: str, py_version: str | None = None,
                    base_framework_version: str | None = None) -> str:
    from sagemaker.core import image_uris

    extra = {k: v for k, v in (("py_version", py_version), ("base_framework_version", base_framework_version)) if v}
    return image_uris.retrieve(framework, region=region, version=version, image_scope=scope, instance_type=instance_type, **extra)


def sklearn_image(region: str, version: str, scope: str, instance_type: str) -> str:
    return framework_image(FRAMEWORK, region, version, scope, instance_type)


def resolve(cfg: StackConfig, source: str) -> dict[str, ModelImages]:
    """Images of every model, or a ConfigError naming each model whose framework version is unknown."""
    images, problems = {}, []
    for name, model in cfg.models.items():
        types = model.step_instance_types
        runtime = model.runtime
        key = "framework" if model.framework is not None else "training.framework_version"
        try:
            platform = sklearn_image(cfg.region, PLATFORM_FRAMEWORK[1], "training", types["validate"])
            platform_inference = sklearn_image(cfg.region, PLATFORM_FRAMEWORK[1], "inference", "ml.m5.large")
            if isinstance(runtime, ImagesConfig):
                images[name] = ModelImages(runtime.training, runtime.inference or "", platform, platform_inference, own=True)
                continue
            assert isinstance(runtime, FrameworkConfig)
            extra = (runtime.py_version, runtime.base_framework_version)
            training = framework_image(runtime.name, cfg.region, runtime.version, "training", types["train"], *extra)
            inference = framework_image(runtime.name, cfg.region, runtime.version, "inference", types["inference"], *extra)
            if model.builtin:  # the built-in recipe's image is the platform's (as before: one version for both)
                platform, platform_inference = training, inference
            images[name] = ModelImages(training, inference, platform, platform_inference)
        except ValueError as e:
            problems.append(f"config.mlops:models.{name}.{key}: {runtime!r} is not accepted: {e}")
    if problems:
        raise ConfigError(source, problems)
    return images

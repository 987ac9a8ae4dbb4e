"""Container images from the SageMaker SDK's own registry data (``sagemaker.core.image_uris``).

Never a hard-coded account id: the SDK maps each region to the account that hosts the framework
images. Imported lazily because ``sagemaker.core`` takes ~1.4 s to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from infra.config import ConfigError, StackConfig

FRAMEWORK = "sklearn"


@dataclass(frozen=True)
class ModelImages:
    training: str
    inference: str


@cache
def sklearn_image(region: str, version: str, scope: str, instance_type: str) -> str:
    from sagemaker.core import image_uris

    return image_uris.retrieve(FRAMEWORK, region=region, version=version, image_scope=scope, instance_type=instance_type)


def resolve(cfg: StackConfig, source: str) -> dict[str, ModelImages]:
    """Images of every model, or a ConfigError naming each model whose framework version is unknown."""
    images, problems = {}, []
    for name, model in cfg.models.items():
        t = model.training
        try:
            images[name] = ModelImages(
                training=sklearn_image(cfg.region, t.framework_version, "training", t.instance_type),
                inference=sklearn_image(cfg.region, t.framework_version, "inference", "ml.m5.large"),
            )
        except ValueError as e:
            problems.append(f"config.mlops:models.{name}.training.framework_version: {t.framework_version!r} is not accepted: {e}")
    if problems:
        raise ConfigError(source, problems)
    return images

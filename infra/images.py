"""Container images from the SageMaker SDK's own registry data (``sagemaker.core.image_uris``).

Never a hard-coded account id: the SDK maps each region to the account that hosts the framework
images. Importing ``sagemaker.core`` costs 1.5-3 CPU-s (it loads the whole SDK), more than the rest of a
synth, so every URI the SDK resolves is kept in a small cache under the working directory
(``.mlops/cache/image-uris.json``), keyed by the SDK's version, the sha256 of the framework's registry
file and the lookup's arguments: the SDK is imported only on a miss, and a new SDK or registry file is a miss.
The answer is always the SDK's own (``tests/infra/test_images.py`` compares the cache with the SDK for every
version and region the config accepts). A model names its framework (``framework: {name, version}``; the
built-in recipe: scikit-learn) or brings its own ECR images (``images``). The platform's own steps run in
:data:`infra.frameworks.PLATFORM_FRAMEWORK`'s image whatever the model's.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from infra.config import ConfigError, FrameworkConfig, ImagesConfig, StackConfig
from infra.frameworks import PLATFORM_FRAMEWORK

FRAMEWORK = PLATFORM_FRAMEWORK[0]
SDK_DISTRIBUTION = "sagemaker-core"
CACHE_FILE = Path(".mlops") / "cache" / "image-uris.json"


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


def registry_file(framework: str) -> Path:
    """The SDK's registry data for ``framework`` (``sagemaker/core/image_uri_config/<framework>.json``), found
    without importing the SDK."""
    spec = importlib.util.find_spec("sagemaker")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "core" / "image_uri_config" / f"{framework}.json"
        if path.is_file():
            return path
    raise ValueError(f"the SageMaker SDK ({SDK_DISTRIBUTION}) has no image registry for framework {framework!r}")


@cache
def _registry_key(framework: str) -> str:
    path = registry_file(framework)
    return f"{importlib.metadata.version(SDK_DISTRIBUTION)}:{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"


def cache_path() -> Path:
    return Path(os.environ.get("MLOPS_IMAGE_CACHE") or Path.cwd() / CACHE_FILE)


_MEMO: dict[str, str] = {}


def _read_cache(path: Path) -> dict[str, str]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # absent or damaged: every lookup is a miss and the file is rewritten
    return {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(doc, dict) else {}


def _write_cache(path: Path, entries: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
        tmp.write_text(json.dumps(entries, indent=0, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass  # a read-only working directory: the SDK is asked again next time, nothing else changes


def retrieve(framework: str, *, region: str, version: str, scope: str, instance_type: str, **extra: str) -> str:
    """``image_uris.retrieve(framework, ...)``: from the cache when the same SDK and registry file answered it
    before, else from the SDK (``ValueError`` for what the SDK refuses, with the SDK's message). ``extra``: the
    SDK's other selectors (``py_version``, ``base_framework_version``)."""
    key = json.dumps([_registry_key(framework), framework, region, version, scope, instance_type, *sorted(extra.items())])
    if key in _MEMO:
        return _MEMO[key]
    path = cache_path()
    entries = _read_cache(path)
    if key not in entries:
        from sagemaker.core import image_uris

        entries[key] = image_uris.retrieve(framework, region=region, version=version, image_scope=scope, instance_type=instance_type, **extra)
        _write_cache(path, entries)
    _MEMO[key] = entries[key]
    return entries[key]


def framework_image(framework: str, region: str, version: str, scope: str, instance_type: str, py_version: str | None = None,
                    base_framework_version: str | None = None) -> str:
    extra = {k: v for k, v in (("py_version", py_version), ("base_framework_version", base_framework_version)) if v}
    return retrieve(framework, region=region, version=version, scope=scope, instance_type=instance_type, **extra)


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

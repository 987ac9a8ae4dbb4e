"""Which framework images exist, read from the SageMaker SDK's own registry files (``image_uri_config/*.json``).

``mlops validate`` refuses an unknown framework version before anything is synthesized, naming the accepted
ones, without importing the SDK (``sagemaker.core`` takes ~1.4 s to import; validate must stay fast): the same
JSON files ``sagemaker.core.image_uris.retrieve`` reads, located through the installed distribution.
``infra/images.py`` resolves the URIs with the SDK itself at synth time.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

FrameworkName = Literal["sklearn", "xgboost", "pytorch", "tensorflow", "huggingface"]
FRAMEWORKS: tuple[str, ...] = ("sklearn", "xgboost", "pytorch", "tensorflow", "huggingface")
SCOPES = ("training", "inference")

PLATFORM_FRAMEWORK = ("sklearn", "1.9-0")
"""The image the platform's own steps (contract validation, baseline statistics, the built-in evaluate, drift
processing) run in, whatever a model's framework: ``training/`` is built and tested for it."""


class UnknownFramework(ValueError):
    """A framework, version, base framework or region the SDK's registry does not have (message: what is accepted)."""


@cache
def _config_dir() -> Path:
    spec = importlib.util.find_spec("sagemaker")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise UnknownFramework("the SageMaker SDK (sagemaker) is not installed; install the project's dependencies")
    for location in spec.submodule_search_locations:
        folder = Path(location) / "core" / "image_uri_config"
        if folder.is_dir():
            return folder
    raise UnknownFramework("the installed SageMaker SDK has no core/image_uri_config; install the project's pinned sagemaker")


@cache
def registry(framework: str) -> dict[str, Any]:
    return json.loads((_config_dir() / f"{framework}.json").read_text())


def _versions(framework: str, scope: str) -> tuple[dict[str, Any], dict[str, str]]:
    doc = registry(framework)
    section = doc.get(scope, doc)
    return section.get("versions", {}), section.get("version_aliases", {})


def accepted_versions(framework: str, scope: str = "training") -> list[str]:
    versions, aliases = _versions(framework, scope)
    return [*versions, *aliases]


def check(framework: str, version: str, region: str, base_framework_version: str | None = None) -> None:
    """Raise UnknownFramework unless ``framework`` ``version`` has training and inference images in ``region``."""
    if framework not in FRAMEWORKS:
        raise UnknownFramework(f"framework {framework!r} is not accepted; accepted: {', '.join(FRAMEWORKS)}")
    for scope in SCOPES:
        versions, aliases = _versions(framework, scope)
        entry = versions.get(aliases.get(version, version))
        if entry is None:
            raise UnknownFramework(
                f"{framework} {version!r} has no {scope} image in the SageMaker SDK's registry; accepted {scope} versions: "
                f"{', '.join([*versions, *aliases])}"
            )
        if framework == "huggingface":
            bases = [k for k in entry if k != "version_aliases"]
            base = base_framework_version
            if base is None:
                if len(bases) != 1:
                    raise UnknownFramework(f"huggingface {version} needs base_framework_version; accepted for {scope}: {', '.join(bases)}")
                base = bases[0]
            if base not in entry:
                raise UnknownFramework(
                    f"huggingface {version} base_framework_version {base!r} has no {scope} image; accepted: {', '.join(bases)}"
                )
            entry = entry[base]
        regions = entry.get("registries", {})
        if region not in regions:
            raise UnknownFramework(f"{framework} {version} has no {scope} image in region {region}; regions: {', '.join(sorted(regions))}")

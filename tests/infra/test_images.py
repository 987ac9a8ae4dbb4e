"""Image URIs: always what the SageMaker SDK resolves, even when they come from the cache that spares a synth
importing the SDK (infra/images.py)."""

from __future__ import annotations

import json

import pytest

from infra import images


@pytest.fixture
def cache_file(tmp_path, monkeypatch):
    path = tmp_path / "image-uris.json"
    monkeypatch.setenv("MLOPS_IMAGE_CACHE", str(path))
    monkeypatch.setattr(images, "_MEMO", {})
    return path


def accepted(framework: str) -> list[tuple[str, str, str]]:
    """(scope, version, region) of every image the SDK's registry file lists for ``framework``."""
    doc = json.loads(images.registry_file(framework).read_text())
    out = []
    for scope in ("training", "inference"):
        for version, spec in doc.get(scope, doc)["versions"].items():
            if "registries" in spec:
                out += [(scope, version, region) for region in sorted(spec["registries"])]
    return out


FRAMEWORKS = ("sklearn", "xgboost")
"""The frameworks of the shipped stacks' models (the next test keeps this list honest)."""


def test_the_shipped_stacks_use_only_the_frameworks_checked_here():
    from infra.config import STACKS_DIR, load_stack_file

    used = {m.runtime.name for path in STACKS_DIR.glob("Pulumi.*.yaml") for m in load_stack_file(path).models.values()
            if hasattr(m.runtime, "name")}
    assert used and used <= set(FRAMEWORKS), used


@pytest.fixture
def sdk(monkeypatch):
    """The SDK's ``image_uris``, recording what it answers. Its region resolver re-reads botocore's 1 MB
    endpoints file on every lookup (80 ms); built once here from the same file (same answers, 500 lookups in
    seconds instead of a minute and a half)."""
    import functools

    from sagemaker.core import common_utils, image_uris

    monkeypatch.setattr(common_utils, "_botocore_resolver", functools.cache(common_utils._botocore_resolver))
    answers: dict[tuple, str] = {}
    real = image_uris.retrieve

    def recording(framework, **kw):
        answers[(framework, kw["region"], kw["version"], kw["image_scope"], kw["instance_type"])] = uri = real(framework, **kw)
        return uri

    monkeypatch.setattr(image_uris, "retrieve", recording)
    return image_uris, answers


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cached_uris_are_the_sdks_for_every_version_and_region(framework, cache_file, sdk, monkeypatch):
    image_uris, answers = sdk
    cases = accepted(framework)
    assert len(cases) > 50, "the registry file lists the framework's versions and regions"
    for scope, version, region in cases:
        images.retrieve(framework, region=region, version=version, scope=scope, instance_type="ml.m5.large")
    assert len(answers) == len(cases), "every first lookup is the SDK's"
    # A new process: nothing memoized, every answer read from the file the first pass wrote, none from the SDK.
    monkeypatch.setattr(images, "_MEMO", {})
    assert len(json.loads(cache_file.read_text())) == len(cases)

    def no_sdk(*a, **k):
        raise AssertionError("a cached lookup asked the SDK")

    monkeypatch.setattr(image_uris, "retrieve", no_sdk)
    for scope, version, region in cases:
        got = images.retrieve(framework, region=region, version=version, scope=scope, instance_type="ml.m5.large")
        assert got == answers[(framework, region, version, scope, "ml.m5.large")], (scope, version, region)


def test_an_entry_of_another_sdk_or_registry_file_is_not_used(cache_file, monkeypatch):
    args = dict(region="eu-west-1", version="1.9-0", scope="training", instance_type="ml.m5.large")
    right = images.retrieve("sklearn", **args)
    (key,) = json.loads(cache_file.read_text())
    stale = json.loads(key)
    stale[0] = "0.0.1:0123456789abcdef"  # what an older SDK (or another registry file) answered
    cache_file.write_text(json.dumps({json.dumps(stale): "wrong.dkr.ecr.eu-west-1.amazonaws.com/old:1"}))
    monkeypatch.setattr(images, "_MEMO", {})
    assert images.retrieve("sklearn", **args) == right


def test_a_damaged_cache_is_a_miss_and_is_rewritten(cache_file, monkeypatch):
    cache_file.write_text("{not json")
    args = dict(region="us-east-1", version="1.9-0", scope="inference", instance_type="ml.m5.large")
    uri = images.retrieve("sklearn", **args)
    assert json.loads(cache_file.read_text()) and uri in json.loads(cache_file.read_text()).values()


def test_unknown_version_is_the_sdks_refusal_and_not_cached(cache_file):
    with pytest.raises(ValueError, match="1.9-9"):
        images.retrieve("sklearn", region="us-east-1", version="1.9-9", scope="training", instance_type="ml.m5.large")
    assert not cache_file.exists() or "1.9-9" not in cache_file.read_text()

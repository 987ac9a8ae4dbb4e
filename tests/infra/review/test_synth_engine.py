"""The mock engine's own shortcuts give the SDK's results."""

from pulumi.runtime import resource as sdk

from infra.config import STACKS_DIR
from infra.review import synth


def test_stack_traces_are_the_sdks(monkeypatch):
    """Every resource of the dev stack (components nested four deep) gets the very stack trace the SDK's
    ``_get_stack_trace`` builds, frame for frame and source position for source position."""
    original = sdk._get_stack_trace
    fast = synth._stack_trace
    traces = []

    def both():
        ours, theirs = fast(), original()
        traces.append((ours, theirs))
        return ours

    monkeypatch.setattr(synth, "_stack_trace", both)
    _, manifest = synth.synth_file(STACKS_DIR / "Pulumi.dev.yaml")
    assert len(traces) >= len(manifest.resources)  # one per registration
    assert all(ours == theirs for ours, theirs in traces)
    deepest = max(traces, key=lambda t: len(t[1].frames))[1]
    assert len(deepest.frames) > 10 and any(f.pc.uri.endswith("components/model/hosted.py") for f in deepest.frames)
    assert sdk._get_stack_trace is original  # restored after the run


def test_stack_trace_outside_a_resource_is_empty():
    """Called with fewer than three ``__init__`` frames above it (not from a resource's constructor), the SDK's
    answer is an empty trace, and so is ours."""
    assert synth._stack_trace() == sdk._get_stack_trace()
    assert len(synth._stack_trace().frames) == 0

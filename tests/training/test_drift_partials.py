"""Each capture record scored once: hour partials of exact counts, a window scored as their sum, and the
processing engine's shards merged; every sum must equal one pass over the same records, bit for bit."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from test_drift_job import (  # noqa: F401  (fixtures)
    CAPTURE,
    WHEN,
    aws,
    baseline,
    capture_file,
    deploy,
    download_manifest,
    model_archive,
    processing_settings,
    put_capture,
    settings,
)

from training.capture import capture_line
from training.drift import (
    PARTIAL_FORMAT,
    DriftScorer,
    JobSettings,
    _digest,
    js_distance,
    load_baseline,
    partial_key,
    psi,
    read_baseline_s3,
    run_job,
    run_shard,
    window_hours,
)
from training.sample_data import generate

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "region", "autopay"]


def one_pass(baseline_doc, chunks: list[bytes], s: JobSettings = None) -> DriftScorer:
    """The reference: every record of the window fed to one scorer, no partials."""
    s = s or settings()
    scorer = DriftScorer(load_baseline(baseline_doc, "s3://models-b/churn/training/run-1/model.tar.gz"), s.threshold, s.min_records)
    for data in chunks:
        scorer.feed(data.decode().splitlines())
    return scorer


def unrounded(scorer: DriftScorer) -> dict[str, tuple[float, float]]:
    """PSI and JS of every feature from the scorer's counts, before the report rounds them."""
    out = {}
    for f in scorer.counts:
        n = int(f.counts.sum())
        actual = f.counts / n
        out[f.base.name] = (psi(actual, f.base.expected), js_distance(actual, f.base.expected))
    return out


def assert_same(report: dict, reference: DriftScorer, merged: DriftScorer) -> None:
    assert merged.state() == reference.state()  # exact integers: every bin of every feature, records, malformed
    assert unrounded(merged) == unrounded(reference)  # floats equal, not approximately
    expected = reference.report(**{k: report[k] for k in ("model", "endpoint", "window", "files")})
    assert report == expected


def fetches(aws) -> list[str]:
    """Keys of every capture object the job reads from here on."""
    got: list[str] = []
    aws.s3.meta.events.register(
        "provide-client-params.s3.GetObject",
        lambda params, **_: got.append(params["Key"]) if "/drift-reports/" not in params["Key"] and params["Bucket"] == CAPTURE else None,
    )
    return got


def merged_of_stored(aws, baseline_doc, s: JobSettings, when) -> DriftScorer:
    scorer = DriftScorer(load_baseline(baseline_doc, "x"), s.threshold, s.min_records)
    for hour in window_hours(when, s.window_hours):
        scorer.merge(json.loads(aws.s3.get_object(Bucket=CAPTURE, Key=partial_key(s, hour))["Body"].read()))
    return scorer


# ---------------------------------------------------------------------------------------------------------------
# States sum exactly


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(0, 600), max_size=5), seed=st.integers(0, 50))
def test_summed_states_of_any_split_equal_one_pass_bit_for_bit(baseline, cuts, seed):
    frame = generate(600, seed=seed, drift={"shift": {"tenure_months": 0.5}})
    lines = capture_file(frame).decode().splitlines() + ["{broken", capture_line("1,2")]  # malformed records count too
    base = load_baseline(baseline, "b")
    whole = DriftScorer(base)
    whole.feed(lines)
    bounds = [0, *sorted(cuts), len(lines)]
    merged = DriftScorer(base)
    for lo, hi in zip(bounds, bounds[1:]):
        part = DriftScorer(base)
        part.feed(lines[lo:hi])
        merged.merge(json.loads(json.dumps(part.state())))  # through JSON, as stored
    assert merged.state() == whole.state()
    assert unrounded(merged) == unrounded(whole)
    assert merged.report() == whole.report()


# ---------------------------------------------------------------------------------------------------------------
# The scheduled job: partials stored, each object read once


def test_each_object_is_scored_once_and_the_window_equals_one_pass(aws, baseline):
    deploy(aws, model_archive(baseline))
    s = settings()
    drifted = generate(900, seed=5, drift={"shift": {"tenure_months": 1.0}})
    parts = [capture_file(drifted.iloc[i * 150 : (i + 1) * 150]) for i in range(6)]
    put_capture(aws, WHEN - timedelta(hours=3), parts[0])
    put_capture(aws, WHEN - timedelta(hours=2), parts[1])
    put_capture(aws, WHEN - timedelta(hours=1), parts[2])
    put_capture(aws, WHEN, parts[3])  # the open hour at the first run: not scored, no partial
    read = fetches(aws)

    first = run_job(s, WHEN, aws)
    assert_same(first, one_pass(baseline, parts[:3]), merged_of_stored(aws, baseline, s, WHEN))
    assert not aws.s3.list_objects_v2(Bucket=CAPTURE, Prefix=partial_key(s, WHEN)).get("Contents"), "no partial of the open hour"

    later = WHEN + timedelta(hours=1)
    put_capture(aws, WHEN - timedelta(hours=1), parts[4], name="late.jsonl")  # a file landing after its hour was scored
    put_capture(aws, WHEN, parts[5], variant="canary")
    second = run_job(s, later, aws)

    assert sorted(read) == sorted({*read}), "no capture object was read twice"
    assert len(read) == 6
    assert second["window"]["start"] == (WHEN - timedelta(hours=2)).replace(minute=0, second=0).isoformat()
    assert_same(second, one_pass(baseline, parts[1:]), merged_of_stored(aws, baseline, s, later))
    assert second["drifted_features"] == ["tenure_months"]


def test_a_changed_capture_object_rescores_its_hour(aws, baseline, caplog):
    deploy(aws, model_archive(baseline))
    s = settings()
    old, new = capture_file(generate(200, seed=1)), capture_file(generate(250, seed=2))
    put_capture(aws, WHEN - timedelta(hours=1), old)
    run_job(s, WHEN, aws)
    put_capture(aws, WHEN - timedelta(hours=1), new)  # the same key, other content: its ETag changes
    with caplog.at_level(logging.WARNING, logger="mlops.drift"):
        report = run_job(s, WHEN, aws)
    assert "changed since its partial; rescoring the hour" in caplog.text
    assert report["records"]["scored"] == 250


def reseal(doc: dict) -> dict:
    doc["sha256"] = _digest(doc)
    return doc


def flip_count(doc):
    doc["features"]["plan"]["counts"][0] += 1  # the digest no longer matches


def other_baseline(doc):
    doc["baseline"] = "0" * 64
    reseal(doc)


def inconsistent(doc):
    doc["features"]["plan"]["counts"][0] += 1  # resealed, but its bins no longer hold the records scored
    reseal(doc)


def foreign(doc):
    doc.clear()
    doc.update({"format": "something-else/1", "counts": [1, 2]})


def negative(doc):
    counts = doc["features"]["region"]["counts"]
    counts[0], counts[1] = -1, counts[1] + counts[0] + 1
    reseal(doc)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (flip_count, "its digest does not match its content"),
        (other_baseline, "counted against another baseline"),
        (inconsistent, "its bins hold"),
        (foreign, f"not a partial ({PARTIAL_FORMAT!r} expected)"),
        (negative, "feature 'region': not"),
        (lambda doc: None, "not JSON"),
    ],
    ids=["corrupt", "other baseline", "inconsistent", "foreign", "negative count", "not json"],
)
def test_rejects_a_corrupt_or_foreign_partial_and_rescores_its_hour(aws, baseline, caplog, tamper, reason):
    deploy(aws, model_archive(baseline))
    s = settings()
    parts = [capture_file(generate(200, seed=k)) for k in range(3)]
    for k, data in enumerate(parts):
        put_capture(aws, WHEN - timedelta(hours=k + 1), data)
    clean = run_job(s, WHEN, aws)
    hour = WHEN.replace(minute=0, second=0) - timedelta(hours=2)
    key = partial_key(s, hour)
    doc = json.loads(aws.s3.get_object(Bucket=CAPTURE, Key=key)["Body"].read())
    tamper(doc)
    aws.s3.put_object(Bucket=CAPTURE, Key=key, Body=b"{not json" if reason == "not JSON" else json.dumps(doc).encode())
    read = fetches(aws)
    with caplog.at_level(logging.WARNING, logger="mlops.drift"):
        again = run_job(s, WHEN, aws)
    assert f"partial s3://{CAPTURE}/{key} refused" in caplog.text and reason in caplog.text
    assert read == [f"churn/mlops-test-churn/primary/{hour:%Y/%m/%d/%H}/a.jsonl"], "that hour, and only it, is rescored"
    assert again == clean


def test_a_new_baseline_rescores_the_whole_window(aws, baseline, caplog):
    deploy(aws, model_archive(baseline))
    put_capture(aws, WHEN - timedelta(hours=1), capture_file(generate(200, seed=1)))
    run_job(settings(), WHEN, aws)
    retrained = dict(baseline, features={**baseline["features"]})
    spec = baseline["features"]["tenure_months"]
    retrained["features"]["tenure_months"] = {**spec, "bins": {**spec["bins"], "edges": [e - 0.5 for e in spec["bins"]["edges"]]}}
    aws.s3.put_object(Bucket="models-b", Key="fixtures/baseline.json", Body=json.dumps(retrained).encode())
    with caplog.at_level(logging.WARNING, logger="mlops.drift"):
        run_job(settings(baseline_uri="s3://models-b/fixtures/baseline.json"), WHEN, aws)
    assert "counted against another baseline" in caplog.text


# ---------------------------------------------------------------------------------------------------------------
# The processing engine on N instances


@pytest.mark.parametrize("instances", [1, 3])
def test_merged_shards_equal_one_pass_bit_for_bit(aws, baseline, tmp_path, instances):
    uri = deploy(aws, model_archive(baseline))
    s = settings()
    drifted = generate(1200, seed=9, drift={"shift": {"tenure_months": 1.0}})
    parts = [capture_file(drifted.iloc[i * 200 : (i + 1) * 200]) for i in range(6)]
    for k, data in enumerate(parts):
        put_capture(aws, WHEN - timedelta(hours=1 + k % 3), data, variant=("primary", "canary")[k % 2], name=f"{k}.jsonl")
    put_capture(aws, WHEN - timedelta(hours=2), b"{broken\n", name="bad.jsonl")
    proc = processing_settings(processing_instance_count=instances)
    sent = []
    aws.sagemaker.meta.events.register("provide-client-params.sagemaker.CreateProcessingJob", lambda params, **_: sent.append(params))

    assert run_job(proc, WHEN, aws, score_here=False)["status"] == "started"
    request = sent[0]
    capture = request["ProcessingInputs"][1]["S3Input"]
    assert capture["S3DataType"] == "ManifestFile" and capture["S3DataDistributionType"] == "ShardedByS3Key"
    assert request["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == instances

    hosts = [f"algo-{i + 1}" for i in range(instances)]
    dirs = [tmp_path / h for h in hosts]
    download_manifest(aws, capture, dirs)
    env = JobSettings.from_env(request["Environment"])
    results = [run_shard(env, WHEN, aws, d.mkdir(exist_ok=True) or d, h, hosts) for h, d in zip(hosts, dirs)]

    assert [r["status"] for r in results[:-1]] == ["shard_stored"] * (instances - 1), "only the last instance merges"
    report = results[-1]
    assert report["records"]["malformed"] == 1 and report["files"] == 7
    reference = one_pass(baseline, [*parts, b"{broken\n"])
    assert_same(report, reference, merged_of_stored(aws, baseline, s, WHEN))
    stored = json.loads(aws.s3.get_object(Bucket=CAPTURE, Key="churn/drift-reports/2026/11/28/12.json")["Body"].read())
    assert stored == report

    # The next run finds every hour covered: it scores nothing, starts no job, and reports the same window.
    assert read_baseline_s3(aws.s3, uri) is not None
    again = run_job(proc, WHEN, aws, score_here=False)
    assert len(sent) == 1 and again == report


def test_no_more_instances_than_objects_to_score(aws, baseline):
    deploy(aws, model_archive(baseline))
    for k in range(2):
        put_capture(aws, WHEN - timedelta(hours=1 + k), capture_file(generate(50, seed=k)))
    sent = []
    aws.sagemaker.meta.events.register("provide-client-params.sagemaker.CreateProcessingJob", lambda params, **_: sent.append(params))
    run_job(processing_settings(processing_instance_count=8), WHEN, aws, score_here=False)
    assert sent[0]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2
    assert sent[0]["Environment"]["MLOPS_DRIFT_PROCESSING_INSTANCE_COUNT"] == "2"


def test_rejects_a_tampered_shard(aws, baseline, tmp_path):
    deploy(aws, model_archive(baseline))
    put_capture(aws, WHEN - timedelta(hours=1), capture_file(generate(300, seed=3)))
    proc = processing_settings(processing_instance_count=2)
    sent = []
    aws.sagemaker.meta.events.register("provide-client-params.sagemaker.CreateProcessingJob", lambda params, **_: sent.append(params))
    run_job(proc, WHEN, aws, score_here=False)
    download_manifest(aws, sent[0]["ProcessingInputs"][1]["S3Input"], [tmp_path])
    env = JobSettings.from_env(sent[0]["Environment"])
    run_shard(env, WHEN, aws, tmp_path, "algo-1", ["algo-1", "algo-2"])
    key = f"churn/drift-reports/partials/jobs/{sent[0]['ProcessingJobName']}/shards/algo-1.json"
    doc = json.loads(aws.s3.get_object(Bucket=CAPTURE, Key=key)["Body"].read())
    doc["hours"][next(iter(doc["hours"]))]["scored"] += 1
    aws.s3.put_object(Bucket=CAPTURE, Key=key, Body=json.dumps(doc).encode())
    empty = tmp_path / "empty"
    empty.mkdir()
    from training.drift import DriftError

    with pytest.raises(DriftError, match="algo-1.json refused \\(not an intact shard\\)"):
        run_shard(env, WHEN, aws, empty, "algo-2", ["algo-1", "algo-2"])
    assert not aws.s3.list_objects_v2(Bucket=CAPTURE, Prefix="churn/drift-reports/2026/").get("Contents"), "no report from a bad merge"

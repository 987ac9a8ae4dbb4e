"""The serving handlers, with the model trained by the ``trained`` fixture: round trips in CSV and JSON,
rejections with a 4xx status, and the package as the serving container loads it."""

from __future__ import annotations

import io
import json
import sys
import tarfile
import textwrap
import types

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from training_steps import REPO, run_isolated

from training.data import read_dataset
from training.inference import (
    BOOTSTRAP_MARKER,
    InferenceRequestError,
    Rejection,
    input_fn,
    model_fn,
    output_fn,
    predict_fn,
)
from training.model import TrainedModel, model_frame
from training.validate import validate_frame

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "region", "autopay"]


def answer(served, body, content_type, accept="application/json"):
    """What the container does with a request: input_fn -> predict_fn -> output_fn."""
    return output_fn(predict_fn(input_fn(body, content_type), served), accept)


def predictions(served, body, content_type) -> list[dict]:
    response, media = answer(served, body, content_type)
    assert media == "application/json"
    return json.loads(response)["predictions"]


@pytest.fixture(scope="module")
def served(trained):
    return model_fn(str(trained.model_dir))


@pytest.fixture(scope="module")
def expected(trained, data_dir, contract) -> np.ndarray:
    model = TrainedModel.load(trained.model_dir)
    typed = validate_frame(read_dataset(data_dir / "test" / "holdout.csv", contract).frame, contract).frame
    return model.probabilities(model_frame(typed, contract))[:40]


@pytest.fixture(scope="module")
def rows(data_dir) -> pd.DataFrame:
    """The first 40 holdout rows, features only, as the text a client sends."""
    return pd.read_csv(data_dir / "test" / "holdout.csv", dtype=str, keep_default_na=False).head(40)[FEATURES]


def check(got: list[dict], expected: np.ndarray) -> None:
    assert [p["probability"] for p in got] == pytest.approx(expected.tolist(), abs=1e-12)
    assert [p["label"] for p in got] == [int(p >= 0.5) for p in expected]


def test_csv_round_trip(served, rows, expected):
    body = rows.to_csv(index=False, header=False)
    check(predictions(served, body, "text/csv"), expected)


def test_csv_with_a_header_in_any_order(served, rows, expected):
    body = rows[list(reversed(FEATURES))].to_csv(index=False).encode()
    check(predictions(served, body, "text/csv; charset=utf-8"), expected)


def test_json_round_trip_in_every_accepted_shape(served, rows, expected):
    records = [{k: (v if v != "" else None) for k, v in r.items()} for r in rows.to_dict(orient="records")]
    check(predictions(served, json.dumps({"instances": records}), "application/json"), expected)
    check(predictions(served, json.dumps(records), "application/json"), expected)
    check(predictions(served, json.dumps([list(r.values()) for r in records]), "application/json"), expected)
    check(predictions(served, json.dumps(records[0]), "application/json"), expected[:1])


def test_json_values_may_be_typed(served):
    typed = {"tenure_months": 12, "monthly_charges": 80.5, "support_calls": 4, "plan": "basic", "region": "south", "autopay": False}
    text = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in typed.items()}
    assert predictions(served, json.dumps(typed), "application/json") == predictions(served, json.dumps(text), "application/json")


def test_unseen_category_is_treated_as_missing(served):
    record = {"tenure_months": 3, "monthly_charges": 99.0, "support_calls": 5, "plan": "enterprise", "region": "north", "autopay": True}
    unseen = predictions(served, json.dumps(record), "application/json")
    missing = predictions(served, json.dumps({**record, "plan": None}), "application/json")
    assert unseen == missing


@pytest.mark.parametrize(
    "body, content_type, accept, status, says",
    [
        (bytes(range(256)), "text/csv", None, 400, "the body is not UTF-8 text"),
        ("1,2,3\n", "text/csv", None, 400, "row 1 has 3 values; expected 6 features: tenure_months, monthly_charges"),
        ("1,2,3,basic,north,true", "application/x-npy", None, 415, "send text/csv or application/json"),
        ("", "application/json", None, 400, "the body is empty; send at least one row (text/csv) or record (application/json)"),
        (b"   \n", "text/csv", None, 400, "the body is empty"),
        ("ten,20.5,1,basic,north,true", "text/csv", None, 400, "tenure_months [type]: 1 value(s) cannot be read as int (row 1)"),
        ("1,20.5,1,basic,north,maybe", "text/csv", None, 400, "expected types tenure_months: int, monthly_charges: float"),
        ('{"instances": [{"tenure_months": 1}]}', "application/json", None, 400, "record 1 lacks ['autopay'"),
        ('{"instances": 3}', "application/json", None, 400, 'no records found; send {"instances": [{feature: value, ...}, ...]}'),
        ("{not json", "application/json", None, 400, "the body is not valid JSON"),
        ("1,20.5,1,basic,north,true", "text/csv", "text/csv", 406, "this model answers application/json"),
    ],
)
def test_rejects_bad_requests_with_a_4xx_naming_what_is_accepted(served, body, content_type, accept, status, says):
    handed_on = predict_fn(input_fn(body, content_type), served)  # neither raises: output_fn answers
    assert isinstance(handed_on, Rejection) or status == 406
    with pytest.raises(InferenceRequestError) as raised:
        answer(served, body, content_type, accept)
    assert raised.value.status_code == status
    assert says in raised.value.message
    assert "\n" not in raised.value.message  # it is also the HTTP reason phrase


_TOKENS = st.sampled_from(["1", "2.5", "", "basic", "north", "true", "maybe", "-1e309", "nan", "inf", "0x1", "\ufffd", '"'])
_CSV = st.lists(st.lists(_TOKENS | st.text(max_size=4), max_size=8), max_size=4).map(
    lambda rows: "\n".join(",".join(r) for r in rows)
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=6) | _TOKENS,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.sampled_from([*FEATURES, "instances", "x"]), inner, max_size=7),
    max_leaves=20,
).map(lambda v: json.dumps(v))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=200) | st.text(max_size=200) | _CSV | _JSON,
    content_type=st.sampled_from(["text/csv", "application/json", "text/csv; charset=utf-8", "Application/JSON", "image/png", "", None]),
    accept=st.sampled_from([None, "", "application/json", "*/*", "text/html, application/json;q=0.9", "text/csv"]),
)
def test_garbage_never_raises_anything_but_a_request_error(served, body, content_type, accept):
    try:
        response, media = answer(served, body, content_type, accept)
    except InferenceRequestError as e:
        assert 400 <= e.status_code < 500 and e.message and "\n" not in e.message
    else:
        assert media == "application/json"
        assert all(0.0 <= p["probability"] <= 1.0 for p in json.loads(response)["predictions"])


def test_inside_the_single_model_server_a_rejection_is_a_response_with_its_status(served, monkeypatch):
    """sagemaker-containers' Flask app turns a raised error into a 500: output_fn answers with a response."""

    class Response:
        def __init__(self, body, status, mimetype):
            self.body, self.status, self.mimetype = body, status, mimetype

    flask = types.SimpleNamespace(has_request_context=lambda: True, Response=Response)
    monkeypatch.setitem(sys.modules, "flask", flask)
    response = answer(served, "1,2", "text/csv")
    assert response.status == 400 and response.mimetype == "application/json"
    assert "row 1 has 2 values" in json.loads(response.body)["error"]


def test_packaged_code_serves_as_the_container_loads_it(trained, tmp_path):
    """The code package's root inference.py (components.code.package) over this package, in a model archive
    laid out as the serving container extracts it; and the bootstrap placeholder answering 503."""
    from components.code.package import sourcedir_entries
    from components.serving.endpoint import BOOTSTRAP_MARKER as COMPONENT_MARKER
    from components.serving.endpoint import bootstrap_model_archive

    assert COMPONENT_MARKER == BOOTSTRAP_MARKER
    with tarfile.open(fileobj=io.BytesIO(bootstrap_model_archive(REPO / "training"))) as tar:
        tar.extractall(tmp_path / "bootstrap", filter="data")
    model_dir = tmp_path / "model"
    for name, data in sourcedir_entries(REPO / "training"):
        (model_dir / "code" / name).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / "code" / name).write_bytes(data)
    for path in trained.model_dir.iterdir():
        if path.is_file():  # code/ comes from the package build above
            (model_dir / path.name).write_bytes(path.read_bytes())

    code = textwrap.dedent(
        f"""
        import sys
        def serve(model_dir, body):
            sys.path.insert(0, model_dir + "/code")  # SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code
            import inference
            from training.inference import InferenceRequestError
            model = inference.model_fn(model_dir)
            try:
                print(inference.output_fn(inference.predict_fn(inference.input_fn(body, "text/csv"), model), None)[0])
            except InferenceRequestError as e:
                print(e.status_code, e.message)
        serve({str(tmp_path / "bootstrap")!r}, "1,20.5,1,basic,north,true")
        serve({str(model_dir)!r}, "1,20.5,1,basic,north,true")
        print(sorted(m.__file__ for m in [sys.modules["training"]]))
        """
    )
    step = run_isolated(code, cwd=tmp_path)
    assert step.returncode == 0, step.stderr
    placeholder, prediction, origin = step.stdout.strip().splitlines()
    assert placeholder.startswith("503 no model has been trained and deployed yet")
    assert len(json.loads(prediction)["predictions"]) == 1
    assert str(tmp_path / "bootstrap" / "code" / "training") in origin

"""The drift job's processing engine reads CSV cells with the image's own pyarrow, and counts as the Lambda's numpy
reader does, in the scikit-learn 1.9-0 image's interpreter (its lock's pyarrow and numpy, see image.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sm_agent import Container

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import json, random
import numpy, pyarrow
from training.capture import capture_line
from training.drift import BASELINE_FORMAT, DriftScorer, load_baseline

baseline = load_baseline({"format": BASELINE_FORMAT, "features": {
    "x": {"kind": "numeric", "count": 90, "null_count": 10, "bins": {"edges": [-1.0, 0.0, 0.5, 2.0], "proportions": [0.1, 0.2, 0.3, 0.2, 0.2]}},
    "plan": {"kind": "categorical", "count": 100, "null_count": 0, "frequencies": {"a": 0.5, "b": 0.5}},
    "flag": {"kind": "categorical", "count": 100, "null_count": 0, "frequencies": {"true": 0.6, "false": 0.4}},
}}, "runtime")
numbers = ["0.25", "-1.5", "", "1e3", "inf", "-inf", "nan", "NaN", "nan(1)", "1_000", " 2", "abc", "\ufeff1", "+0.5", "1e500", "7"]
words = ["a", "b", " a ", "", "zz", "\ufeffa", "x" * 70, "\u00e9"]
bools = ["true", "False", "1", "0.0", "", "yes", " TRUE "]
rng = random.Random(0)
chunks = []
for _ in range(200):
    rows = [",".join([rng.choice(numbers), rng.choice(words), rng.choice(bools)][: rng.choice([3] * 9 + [2])]) for _ in range(rng.randint(1, 40))]
    chunks.append([capture_line(r) for r in rows] + rng.choice([[], ["not json"], [capture_line('"a,b",c,true')]]))
clean = [[capture_line(f"{rng.uniform(-3, 3):.2f},{rng.choice('ab')},{rng.choice(['true', 'false'])}") for _ in range(500)]]
arrow, numpy_, auto = (DriftScorer(baseline, reader=r) for r in ("arrow", "numpy", "auto"))
for lines in chunks + clean:
    for scorer in (arrow, numpy_, auto):
        scorer.feed(lines)
print(json.dumps({
    "pyarrow": pyarrow.__version__, "numpy": numpy.__version__, "auto_reads_with_arrow": auto.arrow is not None,
    "same_state": arrow.state() == numpy_.state() == auto.state(), "same_report": arrow.report() == numpy_.report(),
    "scored": arrow.state()["scored"], "malformed": arrow.state()["malformed"],
}))
'''


def test_the_processing_engine_reads_with_the_images_pyarrow_and_counts_as_the_lambda(runtime, tmp_path):
    container = Container(runtime, tmp_path)
    shutil.copytree(ROOT / "training", container.opt_ml / "code" / "training", ignore=shutil.ignore_patterns("__pycache__"))
    done = container.run(["/opt/venv/bin/python", "-c", SCRIPT], {"PYTHONPATH": "/opt/ml/code"}, "/opt/ml/output/failure")
    assert done.returncode == 0, done.logs()
    got = json.loads(done.stdout.strip().splitlines()[-1])
    lock = (ROOT / "tests/runtime/images/sklearn-1.9-0/uv.lock").read_text()
    assert f'name = "pyarrow"\nversion = "{got["pyarrow"]}"' in lock  # the lock's pyarrow, not this machine's
    assert got["auto_reads_with_arrow"], "the processing image has pyarrow: the job must read with it"
    assert got["same_state"] and got["same_report"], got
    assert got["scored"] > 500 and {"non_numeric", "non_finite", "invalid_bool", "wrong_column_count", "bad_json"} <= set(got["malformed"]), got

"""The sample-data generator: reproducible by seed, drift that moves exactly what it names."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from training_steps import CONTRACT, Run, run_steps

from training.sample_data import generate, write_csv

ROWS = 20_000
INDEPENDENT = ["tenure_months", "support_calls", "region", "autopay"]


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return generate(ROWS, seed=5)


def test_same_seed_same_data_other_seed_other_data(base):
    pd.testing.assert_frame_equal(generate(ROWS, seed=5), base)
    assert not generate(ROWS, seed=6)["tenure_months"].equals(base["tenure_months"])


@pytest.mark.parametrize("feature, k", [("monthly_charges", 1.5), ("tenure_months", -0.5), ("support_calls", 2.0)])
def test_shift_moves_the_named_feature_by_k_standard_deviations_and_nothing_else(base, feature, k):
    drifted = generate(ROWS, seed=5, drift={"shift": {feature: k}})
    expected = k * base[feature].std(ddof=0)
    assert drifted[feature].mean() - base[feature].mean() == pytest.approx(expected, abs=0.02 * abs(expected))
    assert drifted[feature].std() == pytest.approx(base[feature].std(), rel=0.1)  # whole numbers: rounding noise
    others = [c for c in base.columns if c not in (feature, "churned")]
    pd.testing.assert_frame_equal(drifted[others], base[others])
    assert drifted[feature].isna().equals(base[feature].isna())


def test_mix_sets_the_category_proportions_and_leaves_independent_features(base):
    drifted = generate(ROWS, seed=5, drift={"mix": {"plan": {"basic": 0.8, "premium": 0.2}}})
    shares = drifted["plan"].value_counts(normalize=True)
    assert shares["basic"] == pytest.approx(0.8, abs=0.01) and shares["premium"] == pytest.approx(0.2, abs=0.01)
    assert shares.get("standard", 0) == 0
    pd.testing.assert_frame_equal(drifted[INDEPENDENT], base[INDEPENDENT])
    # Charges follow the plan: the cheap plan now dominates.
    assert drifted["monthly_charges"].mean() < base["monthly_charges"].mean() - 5


def test_label_follows_the_drifted_features(base):
    drifted = generate(ROWS, seed=5, drift={"shift": {"support_calls": 2.0}})
    assert drifted["churned"].mean() > base["churned"].mean() + 0.1


def test_base_data_has_a_realistic_label_and_missing_values(base):
    assert 0.15 < base["churned"].mean() < 0.35
    assert 0.005 < base["monthly_charges"].isna().mean() < 0.02


@pytest.mark.parametrize(
    "drift, message",
    [
        ({"shift": {"plan": 1.0}}, "cannot shift 'plan'; numeric features are"),
        ({"mix": {"tenure_months": {"a": 1.0}}}, "cannot change the mix of 'tenure_months'"),
        ({"mix": {"plan": {"basic": 0.5, "premium": 0.2}}}, "summing to 1"),
        ({"trend": {}}, "drift keys ['trend'] are unknown"),
    ],
)
def test_rejects_drift_it_cannot_apply(drift, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate(10, drift=drift)


def test_shipped_sample_is_the_seeded_generator_output(tmp_path):
    shipped = CONTRACT.parent / "churn.csv"
    write_csv(generate(2000, seed=42), tmp_path / "churn.csv")
    assert shipped.read_bytes() == (tmp_path / "churn.csv").read_bytes()
    assert shipped.stat().st_size < 200_000


def test_command_line_writes_the_drifted_dataset(tmp_path):
    out = tmp_path / "drifted.csv"
    args = ["--rows", "400", "--seed", "3", "--out", str(out), "--shift", "monthly_charges=1", "--mix", "plan=basic:0.8,premium:0.2"]
    ok, bad = run_steps(
        [Run("sample_data", args), Run("sample_data", ["--rows", "10", "--out", str(tmp_path / "x.csv"), "--mix", "plan=basic"])],
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    expected = generate(400, seed=3, drift={"shift": {"monthly_charges": 1.0}, "mix": {"plan": {"basic": 0.8, "premium": 0.2}}})
    written = pd.read_csv(out)
    assert np.allclose(written["monthly_charges"], expected["monthly_charges"], equal_nan=True)
    assert written["plan"].tolist() == expected["plan"].astype(str).tolist()
    assert bad.returncode == 2 and "expected FEATURE=CAT:P,CAT:P" in bad.stderr and "Traceback" not in bad.stderr

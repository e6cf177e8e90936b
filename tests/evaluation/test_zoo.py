"""`smartretry zoo` on small data: one row per world, the same evaluation code, files written."""

import json

import pytest
from typer.testing import CliRunner

from training.cli.main import app
from training.config.params import EvaluateParams, ModelParams, Params, TrainParams
from training.evaluation.zoo import ZooRow, family_recovery, run_zoo, zoo_summary

FAST = ModelParams(num_boost_round=60, learning_rate=0.1, early_stopping_rounds=10)


@pytest.mark.slow  # simulates, trains and evaluates two worlds (~40 s)
def test_zoo_evaluates_each_world_with_one_set_of_settings(tmp_path):
    params = Params(
        train=TrainParams(model=FAST),
        evaluate=EvaluateParams(max_invoices=300, max_ope_invoices=600, bootstrap=100),
    )
    rows = run_zoo(["default", "fatigue"], 2500, 3, params, tmp_path, attribute=True)
    assert [r.world for r in rows] == ["default", "fatigue"]
    for row in rows:
        assert row.violations == 0
        c = row.captured
        assert c["lower"] <= c["value"] <= c["upper"]
        assert row.recovery["oracle"] >= row.recovery["learned"] - 1e-9
        assert len(row.calibration_bins) == 10 and 0 <= row.calibration_mae < 0.3
        assert sum(f["invoices"] for f in row.families.values()) == row.evaluated
        timing = [c for c in row.off_policy if c["estimand"] == "first-retry timing"]
        assert {c.get("estimator") for c in timing} == {"ips", "snips"}
        assert all(0 < c["truth"] < 1 for c in timing)
        # the hybrids: every family and all, hard declines take no retry in either policy
        whole = row.attribution["all"]
        assert whole["invoices"] == row.evaluated
        assert whole["learned"] == pytest.approx(row.recovery["learned"])
        assert whole["oracle"] == pytest.approx(row.recovery["oracle"])
        assert whole["learned_retries_only"] <= whole["learned"] + 1e-9
        assert set(row.families) <= set(row.attribution)
        if "hard" in row.attribution:
            hard = row.attribution["hard"]
            assert hard["retries_learned"] == hard["retries_oracle"] == 0
            assert hard["oracle_retries_learned_messages"] == pytest.approx(hard["learned"])
    # the worlds differ, the settings do not
    assert rows[0].recovery != rows[1].recovery
    saved = json.loads((tmp_path / "zoo.json").read_text())
    assert [r["world"] for r in saved] == ["default", "fatigue"]
    table = (tmp_path / "zoo.md").read_text()
    assert "| default |" in table and "| fatigue |" in table
    assert "Off-policy intervals against the truth" in table
    assert "learned retries + oracle messages" in table
    assert (tmp_path / "default" / "history" / "invoices.parquet").exists()


def test_family_recovery_weights_categories_by_invoices():
    import pandas as pd

    categories = pd.DataFrame(
        {
            "learned": [0.5, 0.1, 0.9],
            "fixed": [0.4, 0.0, 0.8],
            "oracle": [0.7, 0.2, 1.0],
            "invoices": [30, 10, 5],
        },
        index=["insufficient_funds", "limit_exceeded", "issuer_unavailable"],
    )
    families = family_recovery(categories)
    assert list(families) == ["insufficient_funds", "technical"]
    assert families["insufficient_funds"]["learned"] == pytest.approx((0.5 * 30 + 0.1 * 10) / 40)
    assert families["insufficient_funds"]["invoices"] == 40


def test_zoo_summary_names_families_below_the_fixed_schedule():
    def row(world, learned, fixed):
        return ZooRow(
            world, "", 1, 1, {"value": 0.5, "lower": 0.4, "upper": 0.6}, {}, 0, 0.01, [],
            {"dispute": {"learned": learned, "fixed": fixed, "oracle": 0.9, "invoices": 1}}, [], 1.0,
        )  # fmt: skip

    summary = zoo_summary([row("a", 0.2, 0.3), row("b", 0.4, 0.3)])
    assert summary["families_below_fixed"] == {"a": ["dispute"]}


def test_unknown_world_is_refused_by_the_cli():
    result = CliRunner().invoke(app, ["zoo", "--worlds", "default,atlantis"])
    assert result.exit_code != 0
    assert "atlantis" in result.output

"""Notebook 02's tables: the evaluation metrics JSON and report, and the model quality."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from training.analytics import model_quality as mq
from training.analytics import policy_report as pr
from training.evaluation.report import LABELS, write_report
from training.evaluation.truth_eval import load_truth
from training.config.params import Params

RATES = {"learned": 0.52, "fixed": 0.39, "rules": 0.50, "no_action": 0.10, "oracle": 0.71}


def _interval(value: float, width: float = 0.03) -> dict[str, float]:
    return {"value": value, "lower": value - width, "upper": value + width}


def evaluation_metrics(truth: bool = True) -> dict:
    """The shape ``run_evaluation`` returns (training/evaluation/run.py)."""
    metrics = {
        "held_out_invoices": 1135,
        "evaluated_invoices": 200,
        "held_out_from": "2024-10-18 16:25:41+00:00",
        "held_out_to": "2024-12-25 21:16:24+00:00",
        "rule_violations": 0,
        "rule_violations_by_policy": {"learned": 0, "fixed": 0},
        "model_estimate": {"learned": 0.50, "fixed": 0.36, "rules": 0.41},
        "off_policy": {
            "target": "the learned models choosing among the logged plans",
            "menu": {"retry_plans": 8, "message_plans": 10},
            **{
                name: {**_interval(value, 0.1), "matched": 10, "ess": ess, "units": 1000}
                for name, value, ess in (
                    ("ips", 0.55, 2.5),
                    ("snips", 0.51, 2.5),
                    ("dr", 0.50, 2.5),
                    ("dm", 0.49, 1000.0),
                )
            },
        },
    }
    if truth:
        metrics["truth"] = {
            **{f"{n}_recovery_rate": _interval(v) for n, v in RATES.items()},
            **{f"{n}_recovered_revenue_share": _interval(v + 0.01) for n, v in RATES.items()},
            "captured_share": _interval(0.40),
            "uplift_over_fixed": _interval(0.13, 0.015),
        }
        metrics["expected_recovery_calibration"] = {
            "binned_mae": 0.02,
            "per_invoice_mae": 0.11,
            "bins": [(0.3, 0.32), (0.6, 0.58)],
        }
        metrics["off_policy"]["truth"] = 0.47
        metrics["off_policy"]["truth_inside_interval"] = {"ips": True, "snips": True, "dr": True}
    return metrics


def breakdowns() -> dict[str, pd.DataFrame]:
    table = pd.DataFrame(
        {
            "learned": [0.441, 0.6321],
            "fixed": [0.350, 0.569],
            "rules": [0.444, 0.618],
            "no_action": [0.12, 0.088],
            "oracle": [0.669, 0.75],
            "invoices": [106, 27],
        },
        index=["insufficient_funds", "do_not_honor"],
    )
    table["captured_share"] = (table["learned"] - table["fixed"]) / (
        table["oracle"] - table["fixed"]
    )
    return {
        "decline category": table,
        "customer segment": table.iloc[:1].rename(index={"insufficient_funds": "first failure"}),
    }


@pytest.fixture
def evaluation_on_disk(tmp_path):
    """Metrics JSON and report folder as ``smartretry evaluate`` writes them."""
    metrics = evaluation_metrics()
    path = tmp_path / "evaluate_metrics.json"
    path.write_text(json.dumps(metrics))
    result = SimpleNamespace(metrics=metrics, breakdowns=breakdowns())
    artifact = SimpleNamespace(metadata={"name": "smart-retry"}, model_version="smart-retry/3")
    write_report(result, tmp_path / "evaluation", artifact)
    return path, tmp_path / "evaluation"


def test_labels_match_the_evaluation_report():
    assert pr.LABELS == LABELS


def test_breakdowns_read_back_from_the_report(evaluation_on_disk):
    path, report_dir = evaluation_on_disk
    evaluation = pr.read_evaluation(path, report_dir)
    assert set(evaluation.breakdowns) == {"decline category", "customer segment"}
    got = evaluation.breakdowns["decline category"]
    expected = breakdowns()["decline category"]
    assert list(got.index) == list(expected.index)
    assert got["invoices"].tolist() == [106, 27]
    for column in ("learned", "fixed", "oracle", "captured_share"):
        assert got[column].to_numpy() == pytest.approx(expected[column].to_numpy(), abs=5e-4)


def test_read_evaluation_refuses_other_json(tmp_path):
    other = tmp_path / "train_metrics.json"
    other.write_text(json.dumps({"models": {}}))
    with pytest.raises(ValueError, match="not the metrics JSON of `smartretry evaluate`"):
        pr.read_evaluation(other)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match="is not valid JSON"):
        pr.read_evaluation(broken)


def test_find_evaluation_without_file_or_store(tmp_path, monkeypatch, evaluation_on_disk):
    path, report_dir = evaluation_on_disk
    assert pr.find_evaluation(path, report_dir).metrics["evaluated_invoices"] == 200
    assert pr.find_evaluation(tmp_path / "missing.json", None) is None
    store = tmp_path / "nowhere" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    assert pr.find_evaluation(tmp_path / "missing.json", None, run_id="abc") is None
    assert not store.exists()  # nothing created by looking
    assert load_truth(None) is None and load_truth(tmp_path / "no-truth") is None


def test_policy_table_with_truth():
    table = pr.policy_table(evaluation_metrics())
    assert list(table.index) == [LABELS[n] for n in RATES]
    assert table["recovery_rate"].to_dict() == pytest.approx(
        {LABELS[n]: v for n, v in RATES.items()}
    )
    assert (table["ci_low"] < table["recovery_rate"]).all()
    assert (table["recovery_rate"] < table["ci_high"]).all()
    assert table.loc["learned policy", "model_estimate_rate"] == 0.50
    assert np.isnan(table.loc["oracle", "model_estimate_rate"])


def test_policy_table_of_a_real_history_has_model_estimates_only():
    table = pr.policy_table(evaluation_metrics(truth=False))
    assert list(table.index) == ["learned policy", "fixed schedule", "rules baseline"]
    assert table["recovery_rate"].isna().all()
    assert pr.headline(evaluation_metrics(truth=False))[0].empty


def test_headline_and_off_policy_tables():
    rates, counts = pr.headline(evaluation_metrics())
    assert rates["value_rate"].tolist() == pytest.approx([0.13, 0.40])
    assert counts["count"].tolist() == [1135, 200, 0]
    ope = pr.off_policy_table(evaluation_metrics())
    assert list(ope.index) == ["IPS", "SNIPS", "DR", "DM"]
    assert ope["truth_rate"].unique().tolist() == [0.47]
    assert ope.loc["DR", "truth_inside_interval"] is True
    assert pr.off_policy_table({"off_policy": {"note": "nothing logged"}}).empty


def test_first_retry_timing_table_shows_refusals_beside_estimates():
    metrics = {
        "off_policy_timing": {
            "ips": {**_interval(0.44, 0.05), "matched": 900, "effective_sample_size": 120.0},
            "snips": {
                "cannot_estimate": "effective sample size 12.0 < 30",
                "matched": 40,
                "effective_sample_size": 12.0,
            },
            "truth": 0.45,
            "truth_inside_interval": {"ips": True},
        }
    }
    table = pr.off_policy_table(metrics, key="off_policy_timing")
    assert list(table.index) == ["IPS", "SNIPS"]
    assert table.loc["IPS", "effective_sample_size"] == 120.0
    assert np.isnan(table.loc["SNIPS", "estimate_rate"])
    assert "effective sample size" in table.loc["SNIPS", "cannot_estimate"]


def test_uplift_by_segment_is_learned_minus_fixed():
    uplift = pr.uplift_by_segment(breakdowns())
    assert uplift["dimension"].tolist() == ["decline category"] * 2 + ["customer segment"]
    assert uplift["uplift_rate"].to_numpy() == pytest.approx([0.091, 0.0631, 0.091])
    assert uplift["oracle_uplift_rate"].to_numpy() == pytest.approx([0.319, 0.181, 0.319])
    assert pr.uplift_by_segment({}).empty


@pytest.fixture(scope="module")
def predictions(small_world):
    return mq.held_out_predictions(small_world.artifact, small_world.history, Params().train)


def test_held_out_predictions_cover_the_test_period(small_world, predictions):
    start = mq.held_out_start(small_world.artifact, small_world.history, Params().train)
    assert start == small_world.split.test_start  # the split the model was trained with
    for name, (label, p) in predictions.items():
        assert len(label) == len(p) > 100, name
        assert ((p >= 0) & (p <= 1)).all()
        assert set(np.unique(label)) == {0, 1}


def test_reliability_bins_and_intervals(predictions):
    table = mq.reliability(predictions, bins=5)
    assert table.groupby("model").size().to_dict() == {"retry": 5, "message": 5, "self_cure": 5}
    assert table.groupby("model")["rows"].sum().to_dict() == {
        name: len(p) for name, (_, p) in predictions.items()
    }
    assert (
        (table["ci_low"] <= table["observed_rate"]) & (table["observed_rate"] <= table["ci_high"])
    ).all()
    label, p = predictions["retry"]
    retry = table[table["model"] == "retry"]
    assert np.average(retry["predicted_rate"], weights=retry["rows"]) == pytest.approx(p.mean())
    assert np.average(retry["observed_rate"], weights=retry["rows"]) == pytest.approx(label.mean())


def test_held_out_metrics_beat_a_constant(small_world, predictions):
    metrics = mq.held_out_metrics(small_world.artifact, predictions)
    assert list(metrics.index) == ["retry", "message", "self_cure"]
    retry = metrics.loc["retry"]
    assert retry["auc"] > 0.6
    assert retry["log_loss"] < retry["constant_log_loss"]


def test_importance_shares(small_world):
    table = mq.importance(small_world.artifact, top=5)
    for _name, part in table.groupby("model"):
        assert len(part) <= 5
        assert part["gain_percent"].is_monotonic_decreasing
        assert part["rank"].tolist() == list(range(1, len(part) + 1))
        assert 0 < part["gain_percent"].sum() <= 100 + 1e-9
    assert mq.describe_model(small_world.artifact).loc["version", "value"] == "smart-retry/test"


@pytest.mark.slow
def test_evaluation_is_found_in_the_models_mlflow_run(tmp_path, monkeypatch, evaluation_on_disk):
    """``smartretry evaluate`` logs its files into the model's run; the notebook reads
    them back from there when the metrics JSON is not on disk."""
    from training.evaluation.mlflow_log import log_evaluation

    path, report_dir = evaluation_on_disk
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    artifact = SimpleNamespace(metadata={"experiment": "notebook-test"})
    run_id = log_evaluation(
        artifact, json.loads(path.read_text()), [path, report_dir / "report.md"]
    )

    found = pr.find_evaluation(tmp_path / "missing.json", None, run_id)
    assert found is not None and found.source.startswith(f"MLflow run {run_id}")
    assert found.metrics["evaluated_invoices"] == 200
    assert set(found.breakdowns) == {"decline category", "customer segment"}
    assert pr.run_id_of(f"runs:/{run_id}/model", SimpleNamespace(metadata={})) == run_id
    assert pr.run_id_of("models/latest", SimpleNamespace(metadata={"run_id": "r1"})) == "r1"
    assert pr.evaluation_from_run("0" * 32) is None  # no such run

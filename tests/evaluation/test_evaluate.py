"""`smartretry evaluate` on a small simulated world: every figure, zero violations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from training.cli.main import app
from training.config.params import EvaluateParams, Params
from training.contract.io import write_history
from training.evaluation.run import run_evaluation
from training.evaluation.truth_eval import compare_policies


@pytest.fixture(scope="module")
def small_params() -> Params:
    return Params(
        evaluate=EvaluateParams(
            max_invoices=150,
            max_ope_invoices=400,
            bootstrap=200,
            oracle_grid_hours=3,
            min_plan_support=5,
        )
    )


@pytest.fixture(scope="module")
def evaluation(small_world, small_params):
    return run_evaluation(
        small_world.history, small_world.artifact, small_params, small_world.truth, progress=False
    )


@pytest.mark.slow  # runs the whole evaluation (~15 s)
def test_headline_figures_and_zero_violations(evaluation):
    m = evaluation.metrics
    for key in (
        "captured_share",
        "policy_recovery_rate",
        "fixed_recovery_rate",
        "oracle_recovery_rate",
        "no_action_recovery_rate",
        "rules_recovery_rate",
    ):
        assert 0 <= m[key] <= 1 or key == "captured_share"
    assert m["rule_violations"] == 0
    assert m["oracle_recovery_rate"] >= m["policy_recovery_rate"] - 0.01
    assert m["policy_recovery_rate"] > m["fixed_recovery_rate"] > m["no_action_recovery_rate"]
    interval = m["truth"]["captured_share"]
    assert interval["lower"] <= interval["value"] <= interval["upper"]
    assert {"ips", "snips", "dr", "dm", "truth"} <= set(m["off_policy"])
    timing = m["off_policy_timing"]
    assert {"ips", "snips", "truth", "estimand", "units"} <= set(timing)


@pytest.mark.slow  # shares the evaluation above
def test_breakdowns_cover_category_processor_country_segment(evaluation):
    assert set(evaluation.breakdowns) == {
        "decline category",
        "processor",
        "country",
        "customer segment",
    }
    category = evaluation.breakdowns["decline category"]
    assert "insufficient_funds" in category.index
    assert (category[["learned", "fixed", "oracle"]].to_numpy() <= 1).all()


def test_bootstrap_intervals_are_honest():
    rng = np.random.default_rng(0)
    import pandas as pd

    values = pd.DataFrame(
        {
            "learned": rng.random(2000) * 0.2 + 0.5,
            "fixed": rng.random(2000) * 0.2 + 0.4,
            "oracle": rng.random(2000) * 0.2 + 0.6,
        }
    )
    out = compare_policies(values, np.ones(2000), replicates=300)
    assert out["captured_share"]["lower"] < 0.5 < out["captured_share"]["upper"]
    assert out["learned_recovery_rate"]["lower"] < 0.6 < out["learned_recovery_rate"]["upper"]


@pytest.mark.slow  # the evaluate command end to end (~13 s)
def test_cli_writes_metrics_and_report(small_world, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    write_history(small_world.history, tmp_path / "history")
    small_world.truth.save(tmp_path / "truth")
    small_world.artifact.save(tmp_path / "model")
    (tmp_path / "params.yaml").write_text(
        "evaluate:\n  max_invoices: 80\n  max_ope_invoices: 200\n  bootstrap: 100\n  oracle_grid_hours: 4\n  min_plan_support: 5\n"
    )
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--data",
            str(tmp_path / "history"),
            "--model",
            str(tmp_path / "model"),
            "--truth",
            str(tmp_path / "truth"),
            "--metrics",
            str(tmp_path / "m.json"),
            "--report-dir",
            str(tmp_path / "report"),
            "--params",
            str(tmp_path / "params.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "captured share" in result.output and "rule violations: 0" in result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["rule_violations"] == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "oracle" in report and (tmp_path / "report" / "policies.png").stat().st_size > 1000
    assert "the learned first-retry time, on any logging" in report


def test_cli_refuses_a_missing_model(small_world, tmp_path):
    write_history(small_world.history, tmp_path / "history")
    result = CliRunner().invoke(
        app, ["evaluate", "--data", str(tmp_path / "history"), "--model", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2
    assert "no decision artifact" in result.output


@pytest.mark.slow  # trains a model without messages and evaluates it (~15 s)
def test_a_model_trained_without_messages_is_evaluated(small_world, small_params):
    from tests.conftest import FAST_MODEL
    from training.artifact.decision_artifact import DecisionArtifact
    from training.config.params import TrainParams
    from training.config.policy import PolicyConfig
    from training.config.retry_limits import RetryLimits
    from training.contract.history import History
    from training.declines.table import load_decline_table
    from training.models.fit import train_models

    h = small_world.history
    history = History(h.customers, h.invoices, h.attempts, h.messages.iloc[0:0])
    table, limits = load_decline_table(), RetryLimits()
    trained = train_models(
        history, TrainParams(model=FAST_MODEL), table, limits.update_requests, progress=False
    )
    assert trained.models.message is None
    artifact = DecisionArtifact.with_table(
        trained.models, trained.data.log, history.customers, [], PolicyConfig(), limits, table, {}
    )
    m = run_evaluation(history, artifact, small_params, small_world.truth, progress=False).metrics
    # the learned policy sends nothing, so the model values it; the fixed schedule's
    # messages it cannot value
    assert 0 < m["model_estimate"]["learned"] < 1
    assert m["model_estimate"]["fixed"] is None and m["model_estimate"]["rules"] is None
    assert "no messages" in m["off_policy"]["note"]
    assert m["rule_violations"] == 0 and 0 < m["policy_recovery_rate"] < 1

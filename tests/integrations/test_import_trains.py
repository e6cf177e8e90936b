"""Imported histories train: a simulated history written as the Stripe events (or the
Recurly export) it would have produced, imported, validated and trained on. Billing
systems do not report dunning messages: the Stripe history gets the team's message log
(here the simulator's) added before training; the Recurly history trains as imported,
without messages (a retry model and no message model), and its model then answers
recommendations with retries and no messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from recurly_export import write_recurly_export
from stripe_export import write_stripe_events
from typer.testing import CliRunner

from training.cli.main import app
from training.config.params import SimulateParams
from training.contract.history import History
from training.contract.io import load_history, write_history
from training.simulator.run import simulate_history

runner = CliRunner()


@pytest.mark.slow
def test_imported_stripe_history_trains_a_retry_model_better_than_constant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    world = simulate_history(SimulateParams(invoices=3000, seed=11)).history
    events = tmp_path / "events.jsonl"
    assert write_stripe_events(world, events) > 1000
    imported_dir = tmp_path / "imported"
    imported = runner.invoke(
        app, ["import", "stripe", "--in", str(events), "--out", str(imported_dir)]
    )
    assert imported.exit_code == 0, imported.output
    history, report = load_history(imported_dir)
    assert report.total_rejected == 0 and history.messages.empty
    messages = world.messages[world.messages["invoice_id"].isin(history.invoices["invoice_id"])]
    data = tmp_path / "history"
    write_history(
        History(history.customers, history.invoices, history.attempts, messages), data, "csv"
    )
    trained = train(data, tmp_path)
    assert trained.exit_code == 0, trained.output
    retry = json.loads((tmp_path / "m.json").read_text())["models"]["retry"]
    assert retry["log_loss"] < retry["constant_log_loss"] and retry["auc"] > 0.6


def train(data: Path, tmp_path: Path):
    """``smartretry train`` on ``data`` with a small, fast model (metrics: tmp_path/m.json)."""
    params = tmp_path / "params.yaml"
    model = {"num_boost_round": 30, "min_data_in_leaf": 20, "early_stopping_rounds": 10}
    params.write_text(yaml.safe_dump({"train": {"model": {**model, "num_threads": 1}}}))
    return runner.invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--model-dir",
            str(tmp_path / "model"),
            "--metrics",
            str(tmp_path / "m.json"),
            "--plots-dir",
            str(tmp_path / "plots"),
            "--params",
            str(params),
            "--no-register",
        ],
    )


@pytest.mark.slow
def test_imported_recurly_history_without_messages_trains_and_recommends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    world = simulate_history(SimulateParams(invoices=3000, seed=11)).history
    export = tmp_path / "recurly.jsonl"
    assert write_recurly_export(world, export) > 5000
    data = tmp_path / "imported"
    imported = runner.invoke(app, ["import", "recurly", "--in", str(export), "--out", str(data)])
    assert imported.exit_code == 0, imported.output
    validated = runner.invoke(app, ["validate", "--data", str(data), "--max-reject-share", "0"])
    assert validated.exit_code == 0, validated.output
    history, _ = load_history(data)
    assert history.messages.empty and len(history.invoices) == len(world.invoices)
    # tenure survives the import: sign-up from the account's created_at
    signup = history.customers.set_index("customer_id")["signup_at"]
    simulated = world.customers.set_index("customer_id")["signup_at"].reindex(signup.index)
    assert (signup == simulated).all()

    trained = train(data, tmp_path)
    assert trained.exit_code == 0, trained.output
    models = json.loads((tmp_path / "m.json").read_text())["models"]
    assert set(models) == {"retry", "self_cure"}
    assert models["retry"]["log_loss"] < models["retry"]["constant_log_loss"]

    request = {
        "invoice_id": "in_new",
        "customer_id": str(history.customers["customer_id"].iloc[0]),
        "amount_minor": 4900,
        "currency": "USD",
        "payment_method": "card",
        "card_brand": "visa",
        "processor": "stripe",
        "decline_code": "insufficient_funds",
        "failed_at": "2026-01-05T10:00:00Z",
    }
    requests, answers = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    requests.write_text(json.dumps(request) + "\n")
    recommended = runner.invoke(
        app,
        ["recommend", "--model", str(tmp_path / "model"), "--input", str(requests),
         "--output", str(answers), "--no-progress"],
    )  # fmt: skip
    assert recommended.exit_code == 0, recommended.output
    answer = json.loads(answers.read_text())
    assert answer["fallback"] is False and answer["model_version"] == "local"
    assert answer["retries"] and answer["messages"] == []
    assert answer["baseline_recovery_probability"] is None
    assert 0 < answer["expected_recovery_probability"] < 1

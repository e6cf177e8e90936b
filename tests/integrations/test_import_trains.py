"""An imported Stripe history trains: a simulated history written as the Stripe events it
would have produced, imported, validated and trained on. Billing systems do not report
dunning messages, so the team's message log (here the simulator's) is added as
``messages`` before training, as docs/integrations.md says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
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
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "train": {
                    "model": {
                        "num_boost_round": 30,
                        "min_data_in_leaf": 20,
                        "early_stopping_rounds": 10,
                        "num_threads": 1,
                    }
                }
            }
        )
    )
    trained = runner.invoke(
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
    assert trained.exit_code == 0, trained.output
    retry = json.loads((tmp_path / "m.json").read_text())["models"]["retry"]
    assert retry["log_loss"] < retry["constant_log_loss"] and retry["auc"] > 0.6

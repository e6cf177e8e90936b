"""End to end: ``smartretry train`` on a small simulated history, into a temporary MLflow
store (SQLite file), the registry and the champion rule, and bad input."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.artifact.decision_artifact import DecisionArtifact
from training.cli.main import app
from training.contract.history import History
from training.contract.io import write_history
from training.features.invoice import events_from_history
from training.tracking import mlflow_runs as tracking
from training.tracking.loading import load_artifact

pytestmark = pytest.mark.slow
runner = CliRunner()
PLOTS = (
    "calibration.png",
    "importance_retry.png",
    "importance_message.png",
    "importance_self_cure.png",
)


@dataclass
class Run:
    folder: Path
    output: str
    champion_after: str | None

    @property
    def metrics(self) -> dict:
        return json.loads((self.folder / "train_metrics.json").read_text())


def train(data: Path, folder: Path, params: Path) -> Run:
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--model-dir",
            str(folder / "model"),
            "--metrics",
            str(folder / "train_metrics.json"),
            "--plots-dir",
            str(folder / "plots"),
            "--params",
            str(params),
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    return Run(folder, result.output, tracking.champion_version("smart-retry"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """MLFLOW_TRACKING_URI pointed at a fresh SQLite file for this module."""
    folder = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        yield folder


@pytest.fixture(scope="module")
def runs(
    store: Path,
    small_history_dir: Path,
    fast_params: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Run]:
    """Three trainings in order on one store: a first model, a worse one (a single
    boosting round), then the first settings again (not worse: the same score)."""
    out = {}
    for name, params in (
        ("first", fast_params()),
        ("worse", fast_params(num_boost_round=1)),
        ("same", fast_params()),
    ):
        out[name] = train(small_history_dir, tmp_path_factory.mktemp(name), params)
    return out


def test_run_is_logged_with_params_metrics_plots_and_fingerprint(
    runs: dict[str, Run], store: Path
) -> None:
    mlflow = tracking.mlflow_module()
    found = mlflow.search_runs(experiment_names=["smartretry"], order_by=["start_time ASC"])
    assert len(found) == 3
    run = mlflow.get_run(found.iloc[0]["run_id"])
    assert run.data.params["train.model.num_boost_round"] == "30"
    assert run.data.params["retry_rules.min_spacing_hours"] == "24.0"
    assert run.data.params["data.sha256"] == runs["first"].metrics["data"]["sha256"]
    assert run.data.tags["data.rows.invoices"] == "2000"
    assert 0.5 < run.data.metrics["test.retry.auc"] <= 1
    assert run.data.metrics["test.retry.log_loss"] == pytest.approx(
        runs["first"].metrics["models"]["retry"]["log_loss"]
    )
    logged = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots")}
    assert logged == {f"plots/{name}" for name in PLOTS}
    assert (store / "mlartifacts" / "smartretry").is_dir()


def test_local_outputs(runs: dict[str, Run]) -> None:
    first = runs["first"]
    for name in PLOTS:
        assert (first.folder / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = first.metrics
    assert set(metrics["models"]) == {"retry", "message", "self_cure"}
    assert {"train_period", "valid_period", "test_period"} <= set(metrics["periods"])
    assert metrics["seconds"]["train_fit_retry"] > 0
    assert "registered as smart-retry/1" in first.output
    assert "no champion yet" in first.output


def test_retry_model_beats_a_constant_predictor_on_held_out_data(runs: dict[str, Run]) -> None:
    retry = runs["first"].metrics["models"]["retry"]
    assert retry["rows"] > 200
    assert retry["log_loss"] < retry["constant_log_loss"]
    assert retry["brier"] < retry["constant_brier"]


def test_champion_moves_only_when_the_new_model_is_not_worse(runs: dict[str, Run]) -> None:
    assert runs["first"].champion_after == "1"
    assert runs["worse"].champion_after == "1"
    assert "does not beat it; champion stays" in runs["worse"].output
    assert runs["same"].champion_after == "3"
    assert "new version 3" in runs["same"].output and "becomes champion" in runs["same"].output

    mlflow = tracking.mlflow_module()
    found = mlflow.search_runs(experiment_names=["smartretry"], order_by=["start_time ASC"])
    worse = mlflow.get_run(found.iloc[1]["run_id"]).data
    assert worse.tags["champion_check.promoted"] == "false"
    assert worse.tags["champion_check.previous_version"] == "1"
    assert (
        worse.metrics["champion_check.new_score"] > worse.metrics["champion_check.champion_score"]
    )
    same = mlflow.get_run(found.iloc[2]["run_id"]).data
    assert same.metrics["champion_check.new_score"] == pytest.approx(
        same.metrics["champion_check.champion_score"]
    )


def test_artifact_loads_from_model_dir_and_registry_and_decides(
    runs: dict[str, Run], small_history: History
) -> None:
    local = DecisionArtifact.load(runs["first"].folder / "model")
    registered = load_artifact("models:/smart-retry@champion")
    assert local.model_version == "smart-retry/1"
    assert registered.model_version == "smart-retry/3"
    assert load_artifact("models:/smart-retry/2").model_version == "smart-retry/2"
    assert (
        local.metadata["training_data"]["fingerprint"]
        == registered.metadata["training_data"]["fingerprint"]
    )

    events = events_from_history(small_history).tail(4)
    decisions = registered.decider().decide(events, None)
    assert list(decisions.events["event_id"]) == list(events["event_id"])
    assert decisions.events["expected_recovery_probability"].between(0, 1).all()
    assert not decisions.events["fallback"].any()
    assert len(decisions.messages) > 0


def test_registered_pyfunc_model_decides_events(
    runs: dict[str, Run], small_history: History
) -> None:
    from training.tracking.pyfunc import example_events

    mlflow = tracking.mlflow_module()
    model = mlflow.pyfunc.load_model("models:/smart-retry@champion")
    assert model.metadata.signature is not None
    events = events_from_history(small_history).tail(3)
    out = model.predict(example_events(events))
    assert list(out["event_id"]) == list(events["event_id"])
    assert out["model_version"].str.fullmatch("run:[0-9a-f]{32}").all()
    for text in out["retries"]:
        for retry in json.loads(text):
            assert pd.Timestamp(retry["at"]) > pd.Timestamp("2024-01-01T00:00:00Z")
            assert 0 <= retry["success_probability"] <= 1
    assert all(isinstance(json.loads(t), list) for t in out["messages"])


def test_same_history_in_csv_and_parquet_has_one_fingerprint(
    small_history: History, small_history_dir: Path, tmp_path: Path
) -> None:
    from training.config.params import Params
    from training.pipeline.train_stage import read_history

    write_history(small_history, tmp_path / "csv", fmt="csv")
    from_parquet = tracking.data_fingerprint(read_history(small_history_dir, Params()))
    from_csv = tracking.data_fingerprint(read_history(tmp_path / "csv", Params()))
    assert from_csv == from_parquet
    changed = small_history.invoices.copy()
    changed.loc[0, "amount_minor"] += 1
    other = History(
        small_history.customers, changed, small_history.attempts, small_history.messages
    )
    assert tracking.data_fingerprint(other)["sha256"] != from_parquet["sha256"]


def _empty_folder(source: Path, target: Path) -> None:
    target.mkdir()


def _missing_messages(source: Path, target: Path) -> None:
    shutil.copytree(source, target)
    (target / "messages.parquet").unlink()


def _broken_invoices(source: Path, target: Path) -> None:
    shutil.copytree(source, target)
    (target / "invoices.parquet").write_bytes(b"not a parquet file")


def _empty_tables(source: Path, target: Path) -> None:
    from training.contract.io import read_raw_tables

    tables = read_raw_tables(source)
    write_history(History.from_tables({k: v.iloc[0:0] for k, v in tables.items()}), target)


def _no_such_folder(source: Path, target: Path) -> None:
    pass


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_no_such_folder, "does not exist"),
        (_empty_folder, "missing table 'customers'"),
        (_missing_messages, "missing table 'messages'"),
        (_broken_invoices, "cannot read"),
        (_empty_tables, "no (valid) invoices"),
    ],
)
def test_bad_or_empty_history_is_a_clear_error_with_exit_code_2(
    make: Callable[[Path, Path], None],
    message: str,
    small_history_dir: Path,
    fast_params: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    data = tmp_path / "history"
    make(small_history_dir, data)
    result = runner.invoke(
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
            str(fast_params()),
        ],
    )
    assert result.exit_code == 2, result.output
    assert f"cannot train on {data}" in result.output
    assert message in result.output
    assert not (tmp_path / "model").exists()
    assert not (tmp_path / "mlflow.db").exists()


def test_loading_from_a_missing_local_store_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(FileNotFoundError, match="no MLflow store at .*none.db"):
        load_artifact("models:/smart-retry@champion")
    assert not (tmp_path / "none.db").exists()


def test_no_register_logs_the_run_but_leaves_the_registry_alone(
    small_history_dir: Path,
    fast_params: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = runner.invoke(
        app,
        ["train", "--data", str(small_history_dir), "--model-dir", str(tmp_path / "model"),
         "--metrics", str(tmp_path / "m.json"), "--plots-dir", str(tmp_path / "plots"),
         "--params", str(fast_params(num_boost_round=5)), "--no-register"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    artifact = DecisionArtifact.load(tmp_path / "model")
    assert artifact.model_version == "local"
    mlflow = tracking.mlflow_module()
    assert mlflow.get_run(artifact.metadata["run_id"]).info.status == "FINISHED"
    assert mlflow.MlflowClient().search_registered_models() == []

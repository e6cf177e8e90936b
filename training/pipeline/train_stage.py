"""The ``train`` stage: history in, decision artifact, metrics, plots and an MLflow run out.

Order matters for what survives a failure: the artifact, metrics JSON and plots are
written locally first (usable without a registry), then the run is logged to MLflow, the
model registered, the champion check run and the alias moved.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import pandas as pd

from training.artifact.calendar_contrast import (
    NO_CONTRAST,
    CalendarContrast,
    measure_calendar_contrast,
)
from training.artifact.chosen_level import level_events, measure_chosen_level
from training.artifact.decision_artifact import ARTIFACT_FILE, METADATA_FILE, DecisionArtifact
from training.artifact.gain_shrinkage import NO_SHRINKAGE, GainShrinkage, fit_gain_shrinkage
from training.config.params import Params
from training.contract.errors import ContractError
from training.contract.history import History
from training.declines.table import DeclineTable
from training.models.fit import TrainResult
from training.tracking.champion import ChampionComparison

log = logging.getLogger(__name__)


class TrainInputError(ValueError):
    """The history cannot be trained on (missing, broken, empty or too small)."""


@dataclass
class TrainOutcome:
    artifact_dir: Path
    metrics_path: Path
    plots: list[Path]
    metrics: dict[str, Any]
    run_id: str | None = None
    version: str | None = None
    comparison: ChampionComparison | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"trained on {self.metrics['periods']['train_period']}, tested on "
            f"{self.metrics['periods']['test_period']}"
        ]
        for name, m in self.metrics["models"].items():
            lines.append(
                f"  {name:9s} test AUC {_num(m['auc'])}  log loss {_num(m['log_loss'])} "
                f"(constant {_num(m['constant_log_loss'])})  Brier {_num(m['brier'])}  "
                f"calibration error {_num(m['calibration_error'])}"
            )
        lines.append(f"artifact: {self.artifact_dir}  metrics: {self.metrics_path}")
        if self.run_id:
            lines.append(
                f"MLflow run {self.run_id}"
                + (f", registered as {self.version}" if self.version else "")
            )
        if self.comparison is not None:
            lines.append(self.comparison.summary())
        lines.append(f"took {self.seconds.get('total', 0):.1f}s")
        return "\n".join(lines)


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _json_ready(value: Any) -> Any:
    """NaN/inf become null (strict JSON, as the API returns this metadata)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_history(data: Path, params: Params) -> History:
    """Read and validate ``data``; a clear :class:`TrainInputError` when it cannot be used."""
    from training.contract.io import load_history

    try:
        history, report = load_history(data, params.validate_)
    except ContractError as error:
        raise TrainInputError(f"cannot train on {data}: {error}") from error
    if len(history.invoices) == 0:
        raise TrainInputError(f"cannot train on {data}: the history has no (valid) invoices")
    if len(history.attempts) == 0:
        raise TrainInputError(f"cannot train on {data}: the history has no payment attempts")
    return history


def input_example(result: TrainResult, rows: int = 2) -> pd.DataFrame:
    """A few failure events of the test period, ids replaced by placeholders (the example
    is stored with the model, so it carries no customer identifiers)."""
    events = result.data.events
    test = events[events["failed_at"] >= result.split.test_start].head(rows)
    example = (test if len(test) else events.head(rows)).reset_index(drop=True).copy()
    numbers = [str(i + 1) for i in range(len(example))]
    example["event_id"] = [f"evt_example_{n}" for n in numbers]
    example["invoice_id"] = [f"inv_example_{n}" for n in numbers]
    example["customer_id"] = [f"cus_example_{n}" for n in numbers]
    return example


def build_artifact(
    result: TrainResult,
    customers: pd.DataFrame,
    templates: list[str],
    params: Params,
    fingerprint: dict[str, Any],
    source: Path,
    table: DeclineTable,
    shrinkage: GainShrinkage = NO_SHRINKAGE,
    contrast: CalendarContrast = NO_CONTRAST,
) -> DecisionArtifact:
    """The decision artifact of a training run (``customers``: the validated customers
    table; ``templates``: the message templates seen in the history; ``shrinkage``: how
    much of the searched gains the reported probabilities keep; ``contrast``: how much
    steeper the calendar's effect is than the models say)."""
    metadata = {
        "name": params.train.registered_model,
        "model_version": "local",
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "smartretry_version": package_version("smartretry"),
        "training_data": {
            **result.split.describe(),
            "fingerprint": fingerprint["sha256"],
            "rows": fingerprint["rows"],
            "source": str(source),
        },
        "evaluation": {
            "test_period": result.split.describe()["test_period"],
            "models": result.metrics,
        },
        "seconds": result.seconds,
        "gain_shrinkage": shrinkage.as_metadata(),
        "calendar_contrast": contrast.as_metadata(),
    }
    return DecisionArtifact.with_table(
        result.models,
        result.data.log,
        customers,
        templates,
        params.policy,
        params.retry_rules,
        table,
        _json_ready(metadata),
    )


def write_metrics(path: Path, metrics: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_ready(metrics), indent=2, allow_nan=False) + "\n")
    return path


def run_train(
    data: Path,
    model_dir: Path,
    metrics_path: Path,
    plots_dir: Path,
    params: Params,
    register: bool = True,
    progress: bool = True,
) -> TrainOutcome:
    """Train on the history in ``data`` and write/log everything (see module docs)."""
    from training.declines.table import load_decline_table
    from training.models.fit import train_models
    from training.tracking.mlflow_runs import data_fingerprint

    started = time.perf_counter()
    seconds: dict[str, float] = {}
    log.info("reading and validating %s", data)
    history = read_history(Path(data), params)
    fingerprint = data_fingerprint(history)
    seconds["load"] = time.perf_counter() - started
    log.info(
        "history: %s invoices, %s attempts, %s messages (sha256 %s)",
        f"{len(history.invoices):,}",
        f"{len(history.attempts):,}",
        f"{len(history.messages):,}",
        fingerprint["sha256"][:12],
    )
    try:
        table = load_decline_table()
        result = train_models(
            history,
            params.train,
            table,
            params.retry_rules.update_requests,
            progress=progress,
        )
    except ValueError as error:
        raise TrainInputError(f"cannot train on {data}: {error}") from error
    seconds.update({f"train_{k}": v for k, v in result.seconds.items()})
    templates = sorted(history.messages["template"].dropna().unique())
    mark = time.perf_counter()
    shrinkage = fit_gain_shrinkage(history, result.data.log, templates, params, table)
    seconds["gain_shrinkage"] = time.perf_counter() - mark
    mark = time.perf_counter()
    contrast = measure_calendar_contrast(history, result.models, result.data.log, params, table)
    seconds["calendar_contrast"] = time.perf_counter() - mark
    level_rows = (history, level_events(history, params))
    return finish_train(
        result,
        history.customers,
        templates,
        fingerprint,
        Path(data),
        table,
        model_dir,
        metrics_path,
        plots_dir,
        params,
        register,
        seconds,
        started,
        shrinkage,
        contrast,
        level_rows,
    )


def finish_train(
    result: TrainResult,
    customers: pd.DataFrame,
    templates: list[str],
    fingerprint: dict[str, Any],
    source: Path,
    table: DeclineTable,
    model_dir: Path,
    metrics_path: Path,
    plots_dir: Path,
    params: Params,
    register: bool,
    seconds: dict[str, float],
    started: float,
    shrinkage: GainShrinkage = NO_SHRINKAGE,
    contrast: CalendarContrast = NO_CONTRAST,
    level_rows: tuple[History, pd.DataFrame] | None = None,
) -> TrainOutcome:
    """Everything after the fit, shared by the in-process and the Dask paths
    (``training/scale``): artifact, plots, metrics JSON, MLflow run, registry, champion.
    ``seconds`` holds the timings so far; ``started`` is the run's ``perf_counter``."""
    from training.models.plots import training_plots

    mark = time.perf_counter()
    artifact = build_artifact(
        result, customers, templates, params, fingerprint, source, table, shrinkage, contrast
    )
    if level_rows is not None:  # the level where the search chooses, with the contrast
        artifact.metadata["chosen_level"] = measure_chosen_level(
            artifact, *level_rows, params
        ).as_metadata()
        seconds["chosen_level"] = time.perf_counter() - mark
        mark = time.perf_counter()
    artifact.save(model_dir)
    seconds["save"] = time.perf_counter() - mark
    mark = time.perf_counter()
    periods = result.split.describe()
    plots = training_plots(
        [m for _, m in result.models.items()],
        result.test_predictions,
        plots_dir,
        periods["test_period"],
    )
    seconds["plots"] = time.perf_counter() - mark
    metrics = {
        "models": result.metrics,
        "periods": periods,
        "data": fingerprint,
        "seconds": {**seconds, "before_tracking": time.perf_counter() - started},
    }
    write_metrics(metrics_path, metrics)
    outcome = TrainOutcome(Path(model_dir), Path(metrics_path), plots, _json_ready(metrics))

    mark = time.perf_counter()
    track_run(outcome, result, artifact, params, fingerprint, register)
    seconds["tracking"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started
    outcome.seconds = seconds
    return outcome


def track_run(
    outcome: TrainOutcome,
    result: TrainResult,
    artifact: DecisionArtifact,
    params: Params,
    fingerprint: dict[str, Any],
    register: bool,
) -> None:
    """Log the run to MLflow; register the model and run the champion check."""
    from training.tracking import mlflow_runs as tracking
    from training.tracking.champion import compare_with_champion

    mlflow = tracking.mlflow_module()
    name = params.train.registered_model
    tracking.use_experiment(params.train.experiment)
    log.info("logging the run to MLflow at %s", tracking.tracking_uri())
    flat = {
        k: v
        for k, v in params.as_flat_dict().items()
        if not k.startswith(("simulate.", "evaluate."))  # other stages' knobs
    }
    with mlflow.start_run(run_name=f"train-{fingerprint['sha256'][:8]}") as run:
        outcome.run_id = run.info.run_id
        mlflow.log_params({**flat, "data.sha256": fingerprint["sha256"]})
        mlflow.set_tags(
            {
                "smartretry.version": artifact.metadata["smartretry_version"],
                "data.sha256": fingerprint["sha256"],
                "data.source": artifact.metadata["training_data"]["source"],
                **{f"data.rows.{k}": str(v) for k, v in fingerprint["rows"].items()},
                **outcome.metrics["periods"],
            }
        )
        mlflow.log_metrics(
            tracking.finite_metrics({"test": result.metrics, "seconds": result.seconds})
        )
        for plot in outcome.plots:
            mlflow.log_artifact(str(plot), artifact_path="plots")
        mlflow.log_artifact(str(outcome.metrics_path), artifact_path="metrics")
        with tempfile.TemporaryDirectory(prefix="smartretry-artifact-") as folder:
            staged = Path(folder) / "decision"
            staged.mkdir()
            for file in (ARTIFACT_FILE, METADATA_FILE):
                shutil.copy2(outcome.artifact_dir / file, staged / file)
            model_uri = tracking.log_decision_model(
                staged, input_example(result), f"run:{outcome.run_id}"
            )
        artifact.metadata["run_id"] = outcome.run_id
        if not register:
            artifact.save(outcome.artifact_dir)
            return
        outcome.version = f"{name}/{tracking.register(model_uri, name, outcome.run_id)}"
        number = outcome.version.rsplit("/", 1)[1]
        current = tracking.champion_version(name)
        champion = (
            tracking.load_registered_artifact(f"models:/{name}/{current}").models
            if current
            else None
        )
        comparison = compare_with_champion(result, number, champion, current)
        outcome.comparison = comparison
        mlflow.log_metrics(comparison.metrics())
        mlflow.set_tags(comparison.tags())
        tracking.tag_version(
            name,
            number,
            {k: v for k, v in comparison.tags().items() if k != "champion_check.summary"},
        )
        if comparison.promote:
            tracking.set_champion(name, number)
    artifact.metadata["model_version"] = outcome.version
    artifact.save(outcome.artifact_dir)

"""How good the three models of a decision artifact are on the period they never saw
(notebook 02): test-period predictions rebuilt from a history, reliability tables with
intervals, the held-out metrics, LightGBM gain importance.

The test rows are the training datasets' rows (``training.models.datasets``) whose
invoice failed at or after the artifact's test start, so they are the rows
``smartretry train`` scored for its own calibration plot when the history is the one it
was trained on, and unseen later rows when the history is newer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.analytics.rates import proportion_interval
from training.artifact.decision_artifact import DecisionArtifact
from training.config.params import TrainParams
from training.contract.history import History
from training.models.datasets import build_training_data
from training.models.metrics import binary_metrics, reliability_table
from training.models.plots import gain_importance
from training.models.split import TimeSplit

MODELS = ("retry", "message", "self_cure")
METRIC_COLUMNS = (
    "rows",
    "positive_rate",
    "mean_prediction",
    "auc",
    "log_loss",
    "constant_log_loss",
    "brier",
    "constant_brier",
    "calibration_error",
)


def describe_model(artifact: DecisionArtifact, run_id: str | None = None) -> pd.DataFrame:
    """Name, version, MLflow run, when and on what it was trained (the artifact's
    metadata; ``run_id`` when known from elsewhere, e.g. the registry)."""
    meta = artifact.metadata
    data = meta.get("training_data", {})
    rows = {
        "name": meta.get("name", "smart-retry"),
        "version": artifact.model_version,
        "MLflow run": run_id or meta.get("run_id") or "–",
        "trained at": meta.get("trained_at", "–"),
        "train period": data.get("train_period", "–"),
        "validation period": data.get("valid_period", "–"),
        "test period": data.get("test_period", "–"),
        "training data (sha256)": str(data.get("fingerprint", "–"))[:12],
        "trees (retry / message / self-cure)": " / ".join(
            str(model.best_iteration) if (model := getattr(artifact.models, name)) else "–"
            for name in MODELS
        ),
    }
    return pd.DataFrame({"value": rows}).rename_axis("model")


def held_out_start(
    artifact: DecisionArtifact, history: History, params: TrainParams
) -> pd.Timestamp:
    """The artifact's test start (its metadata), else the split the training would make
    of this history."""
    start = artifact.metadata.get("training_data", {}).get("test_start")
    if start is None:
        start = TimeSplit.from_due_dates(history.invoices["due_at"], params).test_start
    return pd.Timestamp(start)


def held_out_predictions(
    artifact: DecisionArtifact, history: History, params: TrainParams
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(label, calibrated probability) per model on the test period's rows."""
    data = build_training_data(
        history,
        artifact.decline_table,
        params.window_days,
        artifact.retry_limits.update_requests,
        active_hour=params.features.active_hour,
    )
    start = held_out_start(artifact, history, params)
    out = {}
    for name, model in artifact.models.items():  # no message model without messages
        dataset = getattr(data, name)
        test = (pd.to_datetime(dataset.due_at, utc=True) >= start).to_numpy()
        out[name] = (dataset.label[test], model.predict(dataset.features[test]))
    return out


def reliability(
    predictions: dict[str, tuple[np.ndarray, np.ndarray]], bins: int = 10
) -> pd.DataFrame:
    """Per model and equal-count bin: mean prediction, observed rate and its exact 95%
    interval, rows."""
    parts = []
    for name, (label, p) in predictions.items():
        label = np.asarray(label, dtype=float)
        table = pd.DataFrame(
            reliability_table(label, np.asarray(p, dtype=float), bins) if len(p) else [],
            columns=["predicted_rate", "observed_rate", "rows"],
        )
        positives = (table["observed_rate"] * table["rows"]).round().astype(int)
        low, high = proportion_interval(positives, table["rows"])
        parts.append(table.assign(model=name, ci_low=np.asarray(low), ci_high=np.asarray(high)))
    table = pd.concat(parts, ignore_index=True)
    return table[["model", "predicted_rate", "observed_rate", "ci_low", "ci_high", "rows"]]


def held_out_metrics(
    artifact: DecisionArtifact, predictions: dict[str, tuple[np.ndarray, np.ndarray]]
) -> pd.DataFrame:
    """AUC, log loss, Brier and calibration error per model, next to a constant
    predictor's (the training base rate)."""
    rows = {
        name: binary_metrics(label, p, getattr(artifact.models, name).base_rate)
        for name, (label, p) in predictions.items()
    }
    table = pd.DataFrame(rows).T[list(METRIC_COLUMNS)]
    table["rows"] = table["rows"].astype(int)
    table.index.name = "model"
    return table


def importance(artifact: DecisionArtifact, top: int = 15) -> pd.DataFrame:
    """The ``top`` features of each model by share of total LightGBM split gain (%)."""
    parts = [
        gain_importance(model, top)
        .rename("gain_percent")
        .rename_axis("feature")
        .reset_index()
        .assign(model=name, rank=lambda t: np.arange(1, len(t) + 1))
        for name, model in artifact.models.items()
    ]
    return pd.concat(parts, ignore_index=True)[["model", "rank", "feature", "gain_percent"]]

"""Screen LightGBM settings on held-out metrics: the models of one history fitted with
each variant of ``train.model`` on the same training rows (features built once), and the
test period's log loss, AUC, calibration error and ``best_iteration`` per model.

    smartretry simulate --world default --invoices 20000 --seed 7 --out /tmp/h39/default
    python benchmarks/screen_model_params.py --data /tmp/h39/default \\
        --variant base={} --variant leaves31='{"num_leaves": 31, "min_data_in_leaf": 50}'

Each ``--variant NAME=JSON`` overrides knobs of ``train.model`` of ``--params``; the
rows go to ``--out`` as JSON lines (one per variant and model) and are printed. With
``--truth`` (the simulator's truth folder, ``OUT-truth``) the message model's held-out
rows are also grouped by the distance of the send's local hour to the customer's *true*
active hour (a latent trait of the world: a diagnostic grouping, never an input), model
against observed: the slope docs/evaluation.md ("Why the learned messages lose") follows.
When the rows log propensities, the log loss of the held-out *explored* rows (those
logged with less than the largest propensity: not the team's default choice) is printed
too (docs/training.md, "Propensity weights").
The message model's rows are also grouped by quintile of its own ``active_hour_closeness``
(model against observed along the estimate it reads), and a model's learned slope
(``train.model.count_effects``) is printed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from training.config.params import TrainParams, load_params
from training.contract.io import load_history
from training.declines.table import load_decline_table
from training.models.datasets import TrainingData, training_data_for
from training.models.fit import fit_models
from training.models.split import TimeSplit

ACTIVE_BINS = [-1, 1, 3, 6, 12]  # hours from the customer's true active hour


def by_true_active_hour(
    data: TrainingData, split: TimeSplit, truth: Path, label: np.ndarray, p: np.ndarray
) -> dict[str, list[float]]:
    """Held-out message rows by the send's distance to the true active hour: mean model
    probability and observed label per bucket of :data:`ACTIVE_BINS`."""
    test = split.assign(data.message.due_at) == "test"
    peak = pd.read_parquet(truth / "invoices.parquet", columns=["invoice_id", "active_peak_hour"])
    hour_of = peak.set_index("invoice_id")["active_peak_hour"]
    active = hour_of.reindex(data.message.invoice_id[test]).to_numpy(dtype=float)
    local = data.message.features["local_hour"].to_numpy(dtype=float)[test]
    distance = np.abs((local - active + 12) % 24 - 12)
    rows = pd.DataFrame({"model": p, "observed": label, "bucket": pd.cut(distance, ACTIVE_BINS)})
    means = rows.groupby("bucket", observed=True)[["model", "observed"]].mean()
    return {
        "model": means["model"].round(4).tolist(),
        "observed": means["observed"].round(4).tolist(),
    }


def explored_log_loss(
    propensity: np.ndarray | None, test: np.ndarray, label: np.ndarray, p: np.ndarray
) -> tuple[float, int]:
    """(log loss, rows) of the held-out rows (``test`` marks them among all rows) logged
    with less than the largest propensity; (NaN, 0) without such rows."""
    if propensity is None:
        return float("nan"), 0
    held = propensity[test]
    explored = np.isfinite(held) & (held < np.nanmax(propensity, initial=0.0))
    if explored.sum() == 0 or len(np.unique(label[explored])) < 2:
        return float("nan"), int(explored.sum())
    return float(log_loss(label[explored], p[explored], labels=[0, 1])), int(explored.sum())


def by_input_quantiles(
    data: TrainingData, split: TimeSplit, column: str, label: np.ndarray, p: np.ndarray
) -> dict[str, list[float]]:
    """Held-out message rows by quintile of one of their own inputs (a missing value its
    own group, first): mean model probability and observed label per group. Where the
    model is flat along the true active hour yet follows the observed rate along its
    estimate, the estimate is what lacks, not the fit."""
    test = split.assign(data.message.due_at) == "test"
    values = data.message.features[column].to_numpy(dtype=float)[test]
    known = ~np.isnan(values)
    groups = np.full(len(values), -1)
    if known.sum() >= 5:
        edges = np.unique(np.quantile(values[known], [0.2, 0.4, 0.6, 0.8]))
        groups[known] = np.searchsorted(edges, values[known], side="right")
    rows = pd.DataFrame({"model": p, "observed": label, "group": groups})
    means = rows.groupby("group")[["model", "observed"]].mean()
    return {
        "model": means["model"].round(4).tolist(),
        "observed": means["observed"].round(4).tolist(),
    }


def variant_settings(train: TrainParams, variant: str) -> tuple[str, dict[str, Any], TrainParams]:
    """``NAME=JSON`` → (name, the overrides, ``train`` with them applied to ``train.model``)."""
    label, _, text = variant.partition("=")
    overrides = json.loads(text or "{}")
    model = train.model.model_validate({**train.model.model_dump(), **overrides})
    return label, overrides, train.model_copy(update={"model": model})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="history folder")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--variant", action="append", required=True, help="NAME=JSON")
    parser.add_argument("--models", default="retry,message,self_cure")
    parser.add_argument("--out", type=Path, help="append the rows here (JSON lines)")
    parser.add_argument("--truth", type=Path, help="the history's truth folder (OUT-truth)")
    args = parser.parse_args()

    params = load_params(args.params)
    history, _ = load_history(args.data, params.validate_)
    data = training_data_for(history, params, load_decline_table())
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    names = tuple(n for n in args.models.split(",") if n != "message" or len(history.messages))
    for variant in args.variant:
        label, overrides, settings = variant_settings(params.train, variant)
        started = time.perf_counter()
        fitted, metrics, predictions = fit_models(data, split, settings, names)
        wall = time.perf_counter() - started
        print(f"{args.data.name:15s} {label:22s} all models {wall:.1f}s", flush=True)
        for name in names:
            m = metrics[name]
            row = {
                "data": str(args.data),
                "variant": label,
                "overrides": overrides,
                "model": name,
                "log_loss": m["log_loss"],
                "auc": m["auc"],
                "calibration_error": m["calibration_error"],
                "best_iteration": int(m["best_iteration"]),
                "fit_seconds": fitted[name].fit_seconds,
                "test_rows": int(m["rows"]),
                "variant_seconds": wall,
            }
            print(
                f"{args.data.name:15s} {label:22s} {name:9s} log loss {m['log_loss']:.5f} "
                f"AUC {m['auc']:.4f} cal {m['calibration_error']:.4f} "
                f"best {int(m['best_iteration']):4d} fit {fitted[name].fit_seconds:6.1f}s",
                flush=True,
            )
            dataset = getattr(data, name)
            test = split.assign(dataset.due_at) == "test"
            explored, rows = explored_log_loss(dataset.propensity, test, *predictions[name])
            if rows:
                row["log_loss_explored"], row["explored_rows"] = explored, rows
                print(f"  explored held-out rows {rows}: log loss {explored:.5f}")
            if args.truth is not None and name == "message":
                row["by_true_active_hour"] = by_true_active_hour(
                    data, split, args.truth, *predictions[name]
                )
                print(f"  by true active hour {ACTIVE_BINS}: {row['by_true_active_hour']}")
            if name == "message":
                row["by_closeness"] = by_input_quantiles(
                    data, split, "active_hour_closeness", *predictions[name]
                )
                print(f"  by active_hour_closeness (missing, quintiles): {row['by_closeness']}")
            calendar = getattr(fitted[name], "calendar_effects", ())
            if calendar:
                row["calendar_effects"] = [c.describe() for c in calendar]
                print(f"  calendar effects {row['calendar_effects']}")
            effect = fitted[name].count_effect
            if effect is not None:
                row["count_effect"] = effect.describe()
                print(f"  count effect {row['count_effect']}")
            if args.out:
                with args.out.open("a") as sink:
                    sink.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

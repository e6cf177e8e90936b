"""Simulator-truth comparison: exact expected recovery of every policy on the same
held-out invoices, with bootstrap intervals and the share of the oracle's uplift the
learned policy captures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.core.frames import Schedules
from training.simulator.truth import GroundTruth


def truth_recovery(truth: GroundTruth, events: pd.DataFrame, schedules: Schedules) -> pd.Series:
    """Exact P(recovered within the window) per event (events from the history: the
    event id is the invoice id)."""
    keys = pd.DataFrame(
        {"key": events["event_id"].to_numpy(), "invoice_id": events["invoice_id"].to_numpy()}
    )
    owner = keys.set_index("key")["invoice_id"]
    retries = schedules.retries.rename(columns={"event_id": "key"})
    messages = schedules.messages.rename(columns={"event_id": "key"})
    retries = retries.assign(invoice_id=retries["key"].map(owner))
    messages = messages.assign(invoice_id=messages["key"].map(owner))
    return truth.recovery_probability(keys, retries, messages).reindex(
        events["event_id"].to_numpy()
    )


def bootstrap_indices(n: int, replicates: int, seed: int) -> np.ndarray:
    """(replicates, n) resampled unit indices."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(replicates, n))


def interval(samples: np.ndarray, point: float, alpha: float = 0.05) -> dict[str, float]:
    lower, upper = np.nanquantile(samples, [alpha / 2, 1 - alpha / 2])
    return {"value": float(point), "lower": float(lower), "upper": float(upper)}


def compare_policies(
    values: pd.DataFrame, amounts: np.ndarray, replicates: int = 1000, seed: int = 7
) -> dict[str, dict[str, float]]:
    """Headline figures with 95% bootstrap intervals.

    ``values``: one column per policy (learned, fixed, rules, no_action, oracle), one row
    per invoice: the exact recovery probability. ``amounts``: invoice amounts (one
    currency unit or already comparable) for the revenue figures.
    """
    idx = bootstrap_indices(len(values), replicates, seed)
    out: dict[str, dict[str, float]] = {}
    means = {}
    for name in values.columns:
        v = values[name].to_numpy()
        samples = v[idx].mean(axis=1)
        means[name] = samples
        out[f"{name}_recovery_rate"] = interval(samples, v.mean())
        revenue = v * amounts
        out[f"{name}_recovered_revenue_share"] = interval(
            revenue[idx].sum(axis=1) / amounts[idx].sum(axis=1), revenue.sum() / amounts.sum()
        )
    if {"learned", "fixed", "oracle"} <= set(values.columns):
        point = _captured(values["learned"].mean(), values["fixed"].mean(), values["oracle"].mean())
        samples = _captured(means["learned"], means["fixed"], means["oracle"])
        out["captured_share"] = interval(samples, point)
        diff = values["learned"].to_numpy() - values["fixed"].to_numpy()
        out["uplift_over_fixed"] = interval(diff[idx].mean(axis=1), diff.mean())
    return out


def _captured(learned, fixed, oracle):
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(learned) - fixed) / (np.asarray(oracle) - fixed)


def breakdown(values: pd.DataFrame, groups: pd.Series, min_size: int = 30) -> pd.DataFrame:
    """Mean recovery per policy within each group (groups with at least ``min_size``)."""
    table = values.groupby(groups.to_numpy()).mean()
    table["invoices"] = values.groupby(groups.to_numpy()).size()
    table = table[table["invoices"] >= min_size].sort_values("invoices", ascending=False)
    if {"learned", "fixed", "oracle"} <= set(table.columns):
        table["captured_share"] = _captured(table["learned"], table["fixed"], table["oracle"])
    return table


def load_truth(truth_dir: str | Path | None) -> GroundTruth | None:
    """The simulator's ground truth in ``truth_dir`` (None when not given or absent: a
    real history has none)."""
    if truth_dir is None or not Path(truth_dir).exists():
        return None
    return GroundTruth.load(Path(truth_dir))

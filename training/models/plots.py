"""Training plots as PNG files: calibration on the test period, feature importance.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot global state,
no GUI backend), so plotting works headless and in threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from training.models.calibrated import CalibratedModel
from training.models.metrics import expected_calibration_error, reliability_table

TITLES = {
    "retry": "retry model: P(retry succeeds)",
    "message": "message model: P(customer pays through the message)",
    "self_cure": "self-cure model: P(customer pays unprompted that day)",
}


def calibration_plot(
    predictions: dict[str, tuple[np.ndarray, np.ndarray]],
    path: Path,
    period: str = "",
    bins: int = 10,
) -> Path:
    """Reliability diagram per model: mean predicted probability vs observed rate in
    equal-count bins of the test rows; the diagonal is perfect calibration."""
    figure = Figure(figsize=(5.2 * len(predictions), 5.0), layout="constrained")
    axes = figure.subplots(1, len(predictions), squeeze=False)[0]
    for ax, (name, (label, p)) in zip(axes, predictions.items(), strict=True):
        label = np.asarray(label, dtype=float)
        p = np.asarray(p, dtype=float)
        table = pd.DataFrame(
            reliability_table(label, p, bins) if len(p) else [],
            columns=["predicted", "observed", "rows"],
        )
        top = (
            max(float(table[["predicted", "observed"]].to_numpy().max()) * 1.1, 0.01)
            if len(table)
            else 1.0
        )
        top = min(top, 1.0)
        ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect calibration")
        ax.plot(table["predicted"], table["observed"], marker="o", label="model (equal-count bins)")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("mean predicted probability (0-1)")
        ax.set_ylabel("observed rate (0-1)")
        ece = expected_calibration_error(label, p, bins) if len(p) else float("nan")
        ax.set_title(
            f"{TITLES.get(name, name)}\n{len(p):,} test rows, calibration error {ece:.4f}",
            fontsize=10,
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    figure.suptitle(f"Calibration on the held-out test period {period}".strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def gain_importance(model: CalibratedModel, top: int = 20) -> pd.Series:
    """Share of the booster's total split gain per feature (%), the ``top`` largest."""
    gain = model.booster.feature_importance(importance_type="gain", iteration=model.best_iteration)
    share = pd.Series(gain, index=model.booster.feature_name(), dtype=float)
    total = share.sum()
    share = share / total * 100 if total > 0 else share
    return share.sort_values(ascending=False).head(top)


def importance_plot(model: CalibratedModel, path: Path, top: int = 20) -> Path:
    """Horizontal bars: the ``top`` features by share of total LightGBM gain."""
    share = gain_importance(model, top).iloc[::-1]
    figure = Figure(figsize=(8, 0.32 * len(share) + 1.6), layout="constrained")
    ax = figure.subplots()
    ax.barh(share.index, share.to_numpy(), color="#4c72b0")
    ax.set_xlabel("share of total split gain (%)")
    ax.set_ylabel("feature")
    ax.set_title(
        f"{TITLES.get(model.name, model.name)}\ntop {len(share)} features by LightGBM gain "
        f"({model.best_iteration} trees)",
        fontsize=10,
    )
    ax.grid(axis="x", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def training_plots(
    models: list[CalibratedModel],
    predictions: dict[str, tuple[np.ndarray, np.ndarray]],
    folder: Path,
    period: str = "",
) -> list[Path]:
    """``calibration.png`` and ``importance_<model>.png`` in ``folder``."""
    paths = [calibration_plot(predictions, folder / "calibration.png", period)]
    paths += [importance_plot(m, folder / f"importance_{m.name}.png") for m in models]
    return paths

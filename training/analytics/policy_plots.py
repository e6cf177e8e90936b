"""Figures of the model and policy report (notebook 02), with titles, axis labels, units."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from training.analytics.plots import CUSTOMER_COLOR, LOST_COLOR, RETRY_COLOR, save_figure
from training.models.plots import TITLES

ORACLE_COLOR = "#2f855a"
POLICY_COLORS = {"learned policy": RETRY_COLOR, "oracle": ORACLE_COLOR}


def _errors(
    table: pd.DataFrame, value: str, low: str = "ci_low", high: str = "ci_high"
) -> np.ndarray:
    lower = (table[value] - table[low]).clip(lower=0).fillna(0).to_numpy()
    upper = (table[high] - table[value]).clip(lower=0).fillna(0).to_numpy()
    return np.vstack([lower, upper])


def plot_reliability(table: pd.DataFrame, save_to: str | Path | None = None) -> Figure:
    """Reliability diagram per model: observed rate (95% interval) vs mean prediction in
    equal-count bins of the held-out rows; the diagonal is perfect calibration."""
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(
        1, len(models), figsize=(5.2 * len(models), 5), layout="constrained", squeeze=False
    )
    plt.close(fig)
    for ax, name in zip(axes[0], models, strict=True):
        rows = table[table["model"] == name]
        top = min(1.0, max(float(rows[["predicted_rate", "ci_high"]].max().max()) * 1.1, 0.01))
        ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect calibration")
        ax.errorbar(
            rows["predicted_rate"],
            rows["observed_rate"],
            yerr=_errors(rows, "observed_rate"),
            fmt="o-",
            color=RETRY_COLOR,
            capsize=3,
            label="observed rate per bin (95% interval)",
        )
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("mean predicted probability (%)")
        ax.set_ylabel("observed rate (%)")
        ax.set_title(
            f"{TITLES.get(name, name)}\n{int(rows['rows'].sum()):,} held-out rows",
            fontsize="medium",
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
    fig.suptitle("Calibration on the held-out test period (equal-count bins)")
    return save_figure(fig, save_to)


def plot_importance(table: pd.DataFrame, save_to: str | Path | None = None) -> Figure:
    """Top features per model by share of total LightGBM split gain."""
    models = list(dict.fromkeys(table["model"]))
    height = 0.28 * table.groupby("model").size().max() + 1.8
    fig, axes = plt.subplots(
        1, len(models), figsize=(5.5 * len(models), height), layout="constrained", squeeze=False
    )
    plt.close(fig)
    for ax, name in zip(axes[0], models, strict=True):
        rows = table[table["model"] == name].iloc[::-1]
        ax.barh(rows["feature"], rows["gain_percent"], color=RETRY_COLOR)
        ax.set_xlabel("share of total split gain (%)")
        ax.set_ylabel("feature")
        ax.set_title(TITLES.get(name, name), fontsize="medium")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Feature importance (LightGBM gain)")
    return save_figure(fig, save_to)


def plot_policies(table: pd.DataFrame, save_to: str | Path | None = None) -> Figure:
    """Recovery rate per policy: exact (simulator truth) with 95% bootstrap intervals when
    known, and the model's estimate."""
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    plt.close(fig)
    x = np.arange(len(table))
    truth = table["recovery_rate"].notna().any()
    if truth:
        colors = [POLICY_COLORS.get(name, LOST_COLOR) for name in table.index]
        ax.bar(
            x - 0.2,
            table["recovery_rate"],
            width=0.4,
            color=colors,
            yerr=_errors(table, "recovery_rate"),
            capsize=4,
            label="exact expected recovery (simulator truth, 95% interval)",
        )
    ax.bar(
        x + (0.2 if truth else 0),
        table["model_estimate_rate"],
        width=0.4,
        color=CUSTOMER_COLOR,
        alpha=0.7,
        label="model estimate",
    )
    ax.set_xticks(x, table.index)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("policy")
    ax.set_ylabel("invoices recovered within the window (%)")
    ax.set_title("Held-out period: recovery rate by policy")
    ax.legend(loc="upper left", fontsize="small")
    return save_figure(fig, save_to)


def plot_off_policy(table: pd.DataFrame, save_to: str | Path | None = None) -> Figure:
    """Off-policy estimates with 95% intervals, the simulator truth as a line when known."""
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    plt.close(fig)
    x = np.arange(len(table))
    ax.errorbar(
        x,
        table["estimate_rate"],
        yerr=_errors(table, "estimate_rate"),
        fmt="o",
        color=RETRY_COLOR,
        capsize=5,
        label="estimate (95% interval)",
    )
    truth = table["truth_rate"].dropna()
    if len(truth):
        ax.axhline(
            float(truth.iloc[0]),
            color=ORACLE_COLOR,
            linestyle="--",
            label="simulator truth of the same policy",
        )
    ax.set_xticks(
        x,
        [
            f"{name}\n(ESS {ess:,.0f})"
            for name, ess in zip(table.index, table["effective_sample_size"], strict=True)
        ],
    )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("estimator (effective sample size)")
    ax.set_ylabel("estimated recovery rate (%)")
    ax.set_title("Off-policy estimates: the models choosing among the logged plans")
    ax.legend(loc="best", fontsize="small")
    return save_figure(fig, save_to)


def plot_uplift(uplift: pd.DataFrame, save_to: str | Path | None = None) -> Figure:
    """Per segment: the learned policy's uplift over the fixed schedule (bars) and the
    oracle's (the ceiling, markers), in points of recovery rate."""
    dimensions = list(dict.fromkeys(uplift["dimension"]))
    sizes = uplift.groupby("dimension", sort=False).size()
    fig, axes = plt.subplots(
        len(dimensions),
        1,
        figsize=(9, 0.42 * len(uplift) + 1.6 * len(dimensions)),
        layout="constrained",
        squeeze=False,
        height_ratios=[max(int(sizes[d]), 1) + 1 for d in dimensions],
    )
    plt.close(fig)
    for ax, dimension in zip(axes[:, 0], dimensions, strict=True):
        rows = uplift[uplift["dimension"] == dimension].iloc[::-1]
        y = np.arange(len(rows))
        ax.barh(y, rows["uplift_rate"], color=RETRY_COLOR, label="learned policy - fixed schedule")
        if rows["oracle_uplift_rate"].notna().any():
            ax.plot(
                rows["oracle_uplift_rate"],
                y,
                "D",
                color=ORACLE_COLOR,
                label="oracle - fixed schedule (ceiling)",
            )
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(
            y, [f"{s} (n={n:,})" for s, n in zip(rows["segment"], rows["invoices"], strict=True)]
        )
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("uplift in recovery rate (percentage points)")
        ax.set_ylabel(dimension)
        ax.set_title(f"Uplift by {dimension}", fontsize="medium")
        ax.legend(loc="lower right", fontsize="small")
    fig.suptitle(
        "Uplift of the learned policy over the fixed schedule by segment (simulator truth)"
    )
    return save_figure(fig, save_to)

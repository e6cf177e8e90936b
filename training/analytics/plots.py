"""Figures of the recovery analytics, each with a title, axis labels and units.

Every function returns the matplotlib ``Figure`` (a notebook shows it) and writes a PNG
when given ``save_to``. Figures are closed in pyplot right away, so a notebook shows
each one once (as the cell's value) and long runs do not pile figures up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter, StrMethodFormatter

from training.analytics.cycles import WEEKDAYS

RETRY_COLOR = "#2b6cb0"
CUSTOMER_COLOR = "#dd6b20"
LOST_COLOR = "#cbd5e0"
BLANK_COLOR = "#e2e2e2"


def save_figure(fig: Figure, save_to: str | Path | None = None, dpi: int = 120) -> Figure:
    """Write ``fig`` as PNG to ``save_to`` (folders created) when given; return ``fig``."""
    if save_to is not None:
        path = Path(save_to)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight", format="png")
    return fig


def _new(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure with one axes, already closed in pyplot."""
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    plt.close(fig)
    return fig, ax


def _new_grid(width: float, height: float, nrows: int, ncols: int) -> tuple[Figure, np.ndarray]:
    """A figure with an ``nrows x ncols`` array of axes (always 2-D), closed in pyplot."""
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), layout="constrained", squeeze=False
    )
    plt.close(fig)
    return fig, axes


def plot_recovery_by(
    table: pd.DataFrame,
    window_days: float,
    top: int = 15,
    save_to: str | Path | None = None,
) -> Figure:
    """Stacked bars of recovery by retry and by customer per value, with the 95% interval."""
    rows = table.head(top).iloc[::-1]
    dimension = str(table.index.name or "group").replace("_", " ")
    fig, ax = _new(8, 0.45 * len(rows) + 1.6)
    labels = [f"{value} (n={n:,})" for value, n in zip(rows.index, rows["invoices"], strict=True)]
    y = np.arange(len(rows))
    ax.barh(y, rows["by_retry_rate"], color=RETRY_COLOR, label="by merchant retry")
    ax.barh(
        y,
        rows["by_customer_rate"],
        left=rows["by_retry_rate"],
        color=CUSTOMER_COLOR,
        label="by customer payment",
    )
    ax.errorbar(
        rows["recovery_rate"],
        y,
        xerr=_error(rows, "recovery_rate"),
        fmt="none",
        ecolor="black",
        capsize=3,
        label="95% interval (total)",
    )
    ax.set_yticks(y, labels)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"invoices recovered within {window_days:g} days (% of invoices)")
    ax.set_ylabel(dimension)
    ax.set_title(f"Recovery rate by {dimension}")
    ax.legend(loc="lower right", fontsize="small")
    return save_figure(fig, save_to)


def plot_retry_success(table: pd.DataFrame, save_to: str | Path | None = None) -> Figure:
    """Success rate of the k-th merchant retry with its 95% interval and the retry counts."""
    fig, ax = _new(8, 4)
    x = table.index.to_numpy()
    ax.bar(
        x,
        table["success_rate"],
        color=RETRY_COLOR,
        yerr=_error(table, "success_rate"),
        capsize=3,
        label="success rate (95% interval)",
    )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xticks(x, [f"{k}\n(n={n:,})" for k, n in zip(x, table["retries"], strict=True)])
    ax.set_xlabel("merchant retry number (1 = first retry after the failed charge; n retries)")
    ax.set_ylabel("retries that succeeded (%)")
    ax.set_title("Success rate of the k-th merchant retry")
    ax.legend(loc="upper right", fontsize="small")
    return save_figure(fig, save_to)


def plot_hour_of_week(
    grid: pd.DataFrame,
    title: str,
    colorbar_label: str,
    percent: bool = False,
    save_to: str | Path | None = None,
) -> Figure:
    """Heatmap of a 7 x 24 hour-of-week grid in the customers' local time."""
    fig, ax = _new(11, 3.8)
    image = ax.imshow(grid.to_numpy(dtype="float64"), aspect="auto", cmap="viridis")
    bar = fig.colorbar(image, ax=ax, label=colorbar_label)
    if percent:
        bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)])
    ax.set_yticks(range(7), WEEKDAYS)
    ax.set_xlabel("local hour of day (customer's time zone, h)")
    ax.set_ylabel("local day of week")
    ax.set_title(title)
    return save_figure(fig, save_to)


def plot_recovery_curves(
    curves: pd.DataFrame, top: int = 8, save_to: str | Path | None = None
) -> Figure:
    """Kaplan-Meier share recovered over the days since the failed charge, with 95% bands."""
    fig, ax = _new(9, 5)
    names = list(dict.fromkeys(curves["group"]))[: top + 1]
    for name in names:
        curve = curves[curves["group"] == name]
        n = int(curve["invoices"].iloc[0])
        style: dict[str, Any] = (
            {"color": "black", "linewidth": 2.5} if name == "all invoices" else {}
        )
        (line,) = ax.step(
            curve["days"],
            curve["recovered_share"],
            where="post",
            label=f"{name} (n={n:,})",
            **style,
        )
        ax.fill_between(
            curve["days"],
            curve["ci_low"],
            curve["ci_high"],
            step="post",
            color=line.get_color(),
            alpha=0.12,
        )
    by = curves.attrs.get("by")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlim(0, float(curves["days"].max()))
    ax.set_ylim(0, None)
    ax.set_xlabel("days since the failed charge (d)")
    ax.set_ylabel("invoices recovered (%, Kaplan-Meier)")
    ax.set_title("Time to recovery" + (f" by {str(by).replace('_', ' ')}" if by else ""))
    ax.legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, save_to)


def plot_message_grid(grid: pd.DataFrame, title: str, save_to: str | Path | None = None) -> Figure:
    """Heatmap of a response rate by template / channel and local send hour."""
    fig, ax = _new(11, 0.45 * len(grid) + 1.8)
    values = np.ma.masked_invalid(grid.to_numpy(dtype="float64"))
    image = ax.imshow(values, aspect="auto", cmap="magma", vmin=0)
    ax.set_facecolor(BLANK_COLOR)
    rate = str(grid.attrs.get("rate", "rate")).replace("_", " ")
    bar = fig.colorbar(image, ax=ax, label=f"{rate} (% of messages sent)")
    bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xticks(range(grid.shape[1]), [f"{h:02d}" for h in grid.columns])
    ax.set_yticks(range(len(grid)), grid.index)
    ax.set_xlabel("local send hour (customer's time zone, h)")
    ax.set_ylabel("template / channel")
    min_sent = grid.attrs.get("min_sent")
    note = f"\n(grey: fewer than {min_sent} messages sent)" if min_sent else ""
    ax.set_title(title + note)
    return save_figure(fig, save_to)


def plot_revenue(revenue: pd.DataFrame, top: int = 8, save_to: str | Path | None = None) -> Figure:
    """Per currency (own axis, own unit): amount at risk split into recovered and lost."""
    rows = revenue.head(top)
    columns = min(4, max(len(rows), 1))
    lines = int(np.ceil(max(len(rows), 1) / columns))
    fig, axes = _new_grid(3.2 * columns, 3.0 * lines, nrows=lines, ncols=columns)
    parts = (
        ("recovered_by_retry", "recovered by retry", RETRY_COLOR),
        ("recovered_by_customer", "recovered by customer", CUSTOMER_COLOR),
        ("unrecovered", "not recovered", LOST_COLOR),
    )
    for ax, (currency, row) in zip(axes.flat, rows.iterrows(), strict=False):
        bottom = 0.0
        for column, label, color in parts:
            ax.bar(0, row[column], bottom=bottom, color=color, label=label, width=0.6)
            bottom += row[column]
        ax.set_title(
            f"{currency}: {row['recovered_share']:.0%} of {row['at_risk']:,.0f} recovered",
            fontsize="medium",
        )
        ax.set_ylabel(f"amount ({currency}, major units)")
        ax.set_xticks([0], ["at risk"])
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    for ax in list(axes.flat)[len(rows) :]:
        ax.set_axis_off()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="small")
    fig.suptitle("Revenue at risk vs recovered, per currency (not converted)")
    return save_figure(fig, save_to)


def _error(table: pd.DataFrame, rate: str) -> np.ndarray:
    low = (table[rate] - table["ci_low"]).clip(lower=0).to_numpy()
    high = (table["ci_high"] - table[rate]).clip(lower=0).to_numpy()
    return np.vstack([low, high])

"""Figures of the what-if explorer (notebook 03), with titles, axis labels and units."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from training.analytics.plots import CUSTOMER_COLOR, RETRY_COLOR, save_figure
from training.analytics.what_if import WhatIf

QUIET_COLOR = "#c3dafe"
BLOCKED_COLOR = "#a0aec0"


def _top(curve: pd.DataFrame, what_if: WhatIf) -> float:
    """Upper y limit: room above the highest probability for the message labels."""
    values = np.concatenate(
        [
            curve["success_probability"].to_numpy(dtype=float),
            what_if.decisions.retries["success_probability"].to_numpy(dtype=float),
        ]
    )
    highest = np.nanmax(values) if np.isfinite(values).any() else 0.1
    return float(highest) * 1.45 + 1e-3


def _draw_curve(
    ax: Axes, curve: pd.DataFrame, what_if: WhatIf, legend: bool = True, top: float | None = None
) -> None:
    days = curve["days_after_failure"].to_numpy()
    p = curve["success_probability"].to_numpy()
    allowed = curve["allowed"].to_numpy(dtype=bool)
    ax.fill_between(
        days,
        0,
        1,
        where=curve["quiet_hours"].to_numpy(dtype=bool),
        step="mid",
        transform=ax.get_xaxis_transform(),
        color=QUIET_COLOR,
        alpha=0.6,
        linewidth=0,
        label="local quiet hours (no messages)",
    )
    ax.plot(
        days,
        np.where(allowed, np.nan, p),
        color=BLOCKED_COLOR,
        linestyle="--",
        label="first retry not allowed here (rules / constraints)",
    )
    ax.plot(
        days,
        np.where(allowed, p, np.nan),
        color=RETRY_COLOR,
        label="P(first retry at this hour succeeds)",
    )
    retries = what_if.decisions.retries
    failed = what_if.failed_at
    for i, (at, prob) in enumerate(zip(retries["at"], retries["success_probability"], strict=True)):
        x = (at - failed).total_seconds() / 86400
        ax.axvline(
            x, color="black", linewidth=1, alpha=0.7, label="chosen retry time" if i == 0 else None
        )
        ax.plot(
            x,
            prob,
            marker="o",
            color="black",
            label="its probability in the schedule (earlier retries failed)" if i == 0 else None,
        )
    messages = what_if.decisions.messages
    for i, row in enumerate(messages.itertuples(index=False)):  # at most a few messages
        x = (row.send_at - failed).total_seconds() / 86400
        ax.plot(
            x,
            0.97,
            marker="v",
            color=CUSTOMER_COLOR,
            transform=ax.get_xaxis_transform(),
            label="message sent" if i == 0 else None,
            clip_on=False,
        )
        ax.annotate(
            f"{row.template.replace('_', ' ')}\n({row.channel})",
            (x, 0.93 - 0.09 * (i % 2)),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            ha="center",
            va="top",
            color=CUSTOMER_COLOR,
        )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlim(0, float(days.max()) if len(days) else 1.0)
    ax.set_ylim(0, top if top is not None else _top(curve, what_if))
    ax.set_xlabel("days since the failed charge (d)")
    ax.set_ylabel("retry success probability (%)")
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")


def plot_retry_curve(
    curve: pd.DataFrame, what_if: WhatIf, save_to: str | Path | None = None
) -> Figure:
    """The first-retry success probability over every hour of the window, the chosen
    retry times marked, messages on top, local quiet hours shaded."""
    fig, ax = plt.subplots(figsize=(12, 4.8), layout="constrained")
    plt.close(fig)
    _draw_curve(ax, curve, what_if)
    summary = what_if.summary().iloc[0]
    ax.set_title(
        f"Retry success probability over the window: {summary['decline_category']} "
        f"({summary['decline_code']}), failed {summary['failed_at_local']} local "
        f"({summary['timezone']})"
    )
    return save_figure(fig, save_to)


def plot_variants(
    curves: Mapping[str, tuple[pd.DataFrame, WhatIf]], save_to: str | Path | None = None
) -> Figure:
    """One retry-probability panel per variant, side by side (two per row), one y scale."""
    names = list(curves)
    columns = 2 if len(names) > 1 else 1
    rows = int(np.ceil(len(names) / columns))
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(8 * columns, 3.6 * rows),
        layout="constrained",
        squeeze=False,
    )
    plt.close(fig)
    top = max((_top(curve, what_if) for curve, what_if in curves.values()), default=0.1)
    for ax, name in zip(axes.flat, names, strict=False):
        curve, what_if = curves[name]
        _draw_curve(ax, curve, what_if, legend=False, top=top)
        summary = what_if.summary().iloc[0]
        ax.set_title(
            f"{name}: {summary['retries']} retries, expected recovery "
            f"{summary['expected_recovery_rate']:.0%}",
            fontsize="medium",
        )
    for ax in list(axes.flat)[len(names) :]:
        ax.set_axis_off()
    handles: dict[str, Artist] = {}  # first handle of each label, in drawing order
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(
        list(handles.values()), list(handles), loc="outside lower center", ncols=3, fontsize="small"
    )
    fig.suptitle("How the schedule changes: retry success probability and chosen times per variant")
    return save_figure(fig, save_to)


def plot_message_options(options: pd.DataFrame, save_to: str | Path | None = None) -> Figure:
    """Response probability of each template and channel as the first message."""
    rows = options.iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.6), layout="constrained")
    plt.close(fig)
    labels = rows["template"].str.replace("_", " ") + " / " + rows["channel"]
    colors = np.where(rows["chosen_first"].to_numpy(dtype=bool), CUSTOMER_COLOR, BLOCKED_COLOR)
    ax.barh(np.arange(len(rows)), rows["response_rate"], color=colors)
    ax.set_yticks(np.arange(len(rows)), labels)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_xlabel("P(customer pays through this message) (%)")
    ax.set_ylabel("template / channel")
    when = options["local_time"].iloc[0] if len(options) else ""
    ax.set_title(f"First message: response probability at {when} local (orange: chosen)")
    return save_figure(fig, save_to)

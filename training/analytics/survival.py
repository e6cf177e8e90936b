"""Time to recovery as Kaplan-Meier curves (lifelines), censored where the window ends.

An invoice that is not recovered is censored at the end of its window, or at the export
time (``as_of``) when its window is still open; so the curves use every invoice, and the
open ones do not pull the recovery share down.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CURVE_COLUMNS = ("group", "invoices", "days", "recovered_share", "ci_low", "ci_high")


def recovery_curves(
    cycles: pd.DataFrame,
    by: str | None = "decline_category",
    min_invoices: int = 30,
    level: float = 0.95,
) -> pd.DataFrame:
    """Share of invoices recovered within ``days`` of the failed charge, per group.

    One Kaplan-Meier fit per value of ``by`` with at least ``min_invoices`` invoices, plus
    the ``all invoices`` curve (``by=None`` gives only that one). Long format, columns
    ``CURVE_COLUMNS``; ``recovered_share`` is 1 - S(t), ``ci_low``/``ci_high`` its
    pointwise interval at ``level`` (lifelines' exponential Greenwood), on an hourly grid
    of ``days`` from 0 to the window length.
    """
    from lifelines import KaplanMeierFitter  # imported here: lifelines is slow to import

    window = float(cycles.attrs.get("window_days", cycles["observed_days"].max()))
    if by is not None and by not in cycles.columns:
        raise ValueError(f"unknown grouping column {by!r} for recovery curves")
    duration = cycles["days_to_recovery"].where(cycles["recovered"], cycles["observed_days"])
    frame = pd.DataFrame({"duration": duration.clip(lower=0.0), "event": cycles["recovered"]})
    groups: list[tuple[str, pd.DataFrame]] = [("all invoices", frame)]
    if by is not None:
        sizes = cycles[by].value_counts()
        for value in sizes.index[sizes >= min_invoices]:
            groups.append((str(value), frame[(cycles[by] == value).to_numpy()]))
    timeline = np.append(np.arange(0.0, window * 24.0) / 24.0, window)
    parts = []
    for name, part in groups:  # one fit per group (a handful), not per row
        fitter = KaplanMeierFitter(alpha=1.0 - level).fit(
            part["duration"], part["event"].astype(bool), timeline=timeline, label="km"
        )
        survival = fitter.survival_function_["km"].to_numpy()
        bounds = fitter.confidence_interval_survival_function_.to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "group": name,
                    "invoices": len(part),
                    "days": timeline,
                    "recovered_share": 1.0 - survival,
                    "ci_low": 1.0 - bounds[:, 1],
                    "ci_high": 1.0 - bounds[:, 0],
                }
            )
        )
    curves = pd.concat(parts, ignore_index=True)[list(CURVE_COLUMNS)]
    curves.attrs.update(by=by, window_days=window)
    return curves


def recovery_milestones(curves: pd.DataFrame, days: tuple[float, ...] = (1, 3, 7)) -> pd.DataFrame:
    """Recovered share at a few days and at the window end, and the day half are recovered.

    One row per group of ``recovery_curves``; ``days to 50% recovered`` is NaN when fewer
    than half of the group recover within the window.
    """
    window = float(curves["days"].max())
    marks = sorted({*(d for d in days if d < window), window})
    table = {}
    for group, curve in curves.groupby("group", sort=False):
        at = np.searchsorted(curve["days"].to_numpy(), marks, side="right") - 1
        share = curve["recovered_share"].to_numpy()[at]  # the curve is a step function
        reached = curve.loc[curve["recovered_share"] >= 0.5, "days"]
        row: dict[str, float] = {"invoices": int(curve["invoices"].iloc[0])}
        row.update({f"recovered by day {m:g}": s for m, s in zip(marks, share, strict=True)})
        row["days to 50% recovered"] = reached.min() if len(reached) else np.nan
        table[group] = row
    return pd.DataFrame.from_dict(table, orient="index").rename_axis(curves.attrs.get("by"))

"""Recovery rates by dimension and the success rate of the k-th merchant retry."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import beta

DIMENSIONS = ("decline_category", "processor", "payment_method", "country", "currency")


def proportion_interval(
    successes: pd.Series, trials: pd.Series, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson (exact binomial) interval of ``successes / trials``, vectorized.

    NaN where ``trials`` is 0.
    """
    k = np.asarray(successes, dtype="float64")
    n = np.asarray(trials, dtype="float64")
    alpha = 1.0 - level
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def _closed(cycles: pd.DataFrame, closed_only: bool) -> pd.DataFrame:
    return cycles[cycles["window_closed"]] if closed_only else cycles


def recovery_by(
    cycles: pd.DataFrame, dimension: str, closed_only: bool = True, level: float = 0.95
) -> pd.DataFrame:
    """Recovery rate of the invoices in each value of ``dimension``, most invoices first.

    ``cycles`` comes from ``dunning_cycles``. Columns: ``invoices``, ``recovered``,
    ``recovery_rate`` with ``ci_low``/``ci_high`` (exact binomial, ``level``),
    ``by_retry_rate`` and ``by_customer_rate`` (they add up to ``recovery_rate``).
    With ``closed_only`` invoices whose window is still open are left out.
    """
    if dimension not in cycles.columns:
        raise ValueError(
            f"unknown dimension {dimension!r}; expected a column of the cycles frame, "
            f"e.g. one of {', '.join(DIMENSIONS)}"
        )
    frame = _closed(cycles, closed_only)
    grouped = frame.assign(
        by_retry=frame["recovered_by"].eq("merchant"),
        by_customer=frame["recovered_by"].eq("customer"),
    ).groupby(frame[dimension].fillna("(missing)"), sort=False)
    table = pd.DataFrame(
        {
            "invoices": grouped.size(),
            "recovered": grouped["recovered"].sum(),
            "by_retry": grouped["by_retry"].sum(),
            "by_customer": grouped["by_customer"].sum(),
        }
    )
    table = _with_rates(table, "recovered", "invoices", "recovery_rate", level)
    table["by_retry_rate"] = table["by_retry"] / table["invoices"]
    table["by_customer_rate"] = table["by_customer"] / table["invoices"]
    table = table.drop(columns=["by_retry", "by_customer"])
    table.index.name = dimension
    return table.sort_values(["invoices", "recovery_rate"], ascending=[False, False])


def retry_success_by_number(
    follow_ups: pd.DataFrame, max_number: int | None = None, level: float = 0.95
) -> pd.DataFrame:
    """Success rate of the k-th merchant retry (k = 1 is the first retry after the original).

    ``follow_ups`` comes from ``follow_up_attempts`` (retries after a recovery are already
    left out). Retries numbered above ``max_number`` are pooled into the last row.
    Columns: ``retries``, ``succeeded``, ``success_rate``, ``ci_low``, ``ci_high``.
    """
    retries = follow_ups[follow_ups["initiated_by"] == "merchant"]
    number = retries["retry_number"].astype("int64")
    if max_number is not None:
        if max_number < 1:
            raise ValueError(f"max_number must be >= 1, got {max_number}")
        number = number.clip(upper=max_number)
    grouped = retries.groupby(number.rename("retry_number"))
    table = pd.DataFrame({"retries": grouped.size(), "succeeded": grouped["succeeded"].sum()})
    return _with_rates(table, "succeeded", "retries", "success_rate", level).sort_index()


def overview(cycles: pd.DataFrame) -> pd.DataFrame:
    """Headline figures of the closed windows (one row per metric, column ``value``)."""
    closed = cycles[cycles["window_closed"]]
    n = len(closed)
    recovered = closed["recovered"]
    rows = {
        "invoices (failed first charges)": f"{len(cycles):,}",
        "windows still open (left out of rates)": f"{len(cycles) - n:,}",
        "recovered within the window": _share(recovered.sum(), n),
        "recovered by a merchant retry": _share(closed["recovered_by"].eq("merchant").sum(), n),
        "recovered by the customer paying": _share(closed["recovered_by"].eq("customer").sum(), n),
        "median days to recovery (recovered only)": _days(
            closed.loc[recovered, "days_to_recovery"].median()
        ),
        "window (days)": f"{cycles.attrs.get('window_days', float('nan')):g}",
        "history exported (as of, UTC)": str(cycles.attrs.get("as_of", "")),
    }
    return pd.DataFrame({"value": pd.Series(rows)}).rename_axis("metric")


def _share(count: int, total: int) -> str:
    return f"{count / total:.1%} ({count:,} of {total:,})" if total else "n/a (no invoices)"


def _days(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.1f}"


def _with_rates(
    table: pd.DataFrame, successes: str, trials: str, name: str, level: float
) -> pd.DataFrame:
    table[successes] = table[successes].astype("int64")
    table[name] = table[successes] / table[trials]
    table["ci_low"], table["ci_high"] = proportion_interval(table[successes], table[trials], level)
    return table

"""Where a dunning cycle stands at a candidate time: what was tried, what was sent, what
was observed.

A *timeline* is one invoice's events in long format, logged or proposed:

    key, t (UTC), kind ("original" | "retry" | "message"), template, channel, candidate

``original`` is the first failed charge (one per key). Rows with ``candidate`` true get
features; the others are context (earlier attempts and messages). Training builds one
timeline per invoice from the logged rows; the policy builds one per proposed schedule.

Observations (``clicks``: key, clicked_at, template) are what the customer did that the
billing system reported; a candidate may only use those made before its *decision
time*, the last merchant attempt before it (the API is called at each failed attempt).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

UPDATE_TEMPLATE = "update_payment_method"
KIND_ORDER = {"original": 0, "retry": 1, "message": 2}

STATE_FEATURES = (
    "hours_since_failure",
    "retries_before",
    "hours_since_last_attempt",
    "messages_before",
    "hours_since_last_message",
    "update_requests_before",
    "hours_since_update_request",
    "same_template_before",
    "clicks_known",
    "card_update_known",
)


def _hours(ts: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(pd.to_datetime(ts, utc=True)).asi8 / 3.6e12


def _earlier_count(frame: pd.DataFrame, flag: np.ndarray, by: list[str]) -> np.ndarray:
    """Rows earlier in the (sorted) group with ``flag`` set."""
    counts = pd.Series(flag.astype(np.int64), index=frame.index).groupby(
        [frame[c] for c in by], sort=False
    ).cumsum()
    return counts.to_numpy() - flag.astype(np.int64)


def _earlier_last(frame: pd.DataFrame, hours: np.ndarray, flag: np.ndarray) -> np.ndarray:
    """Time (hours) of the latest earlier row of the same key with ``flag`` (NaN if none)."""
    values = pd.Series(np.where(flag, hours, np.nan), index=frame.index)
    previous = values.groupby(frame["key"], sort=False).shift(1)
    return previous.groupby(frame["key"], sort=False).ffill().to_numpy()


def timeline_state(timeline: pd.DataFrame, clicks: pd.DataFrame | None = None) -> pd.DataFrame:
    """State features of the candidate rows (index: the timeline's index)."""
    order = timeline["kind"].map(KIND_ORDER).to_numpy()
    frame = timeline.assign(_order=order).sort_values(["key", "t", "_order"], kind="stable")
    hours = _hours(frame["t"])
    kind = frame["kind"].to_numpy()
    original = kind == "original"
    attempt = original | (kind == "retry")
    message = kind == "message"
    update = message & (frame["template"].to_numpy() == UPDATE_TEMPLATE)

    start = pd.Series(np.where(original, hours, np.nan), index=frame.index)
    start = start.groupby(frame["key"], sort=False).transform("min").to_numpy()
    last_attempt = _earlier_last(frame, hours, attempt)
    last_message = _earlier_last(frame, hours, message)
    last_update = _earlier_last(frame, hours, update)
    template_key = frame["template"].fillna("").to_numpy()
    state = pd.DataFrame(
        {
            "hours_since_failure": hours - start,
            "retries_before": _earlier_count(frame, kind == "retry", ["key"]),
            "hours_since_last_attempt": hours - last_attempt,
            "messages_before": _earlier_count(frame, message, ["key"]),
            "hours_since_last_message": hours - last_message,
            "update_requests_before": _earlier_count(frame, update, ["key"]),
            "hours_since_update_request": hours - last_update,
            "same_template_before": np.where(
                message,
                _earlier_count(frame.assign(_tpl=template_key), message, ["key", "_tpl"]),
                np.nan,
            ),
        },
        index=frame.index,
    )
    decision = np.where(np.isnan(last_attempt), hours, last_attempt)
    state["clicks_known"], state["card_update_known"] = _observed(frame, decision, clicks)
    candidate = frame["candidate"].to_numpy(dtype=bool)
    return state[candidate].reindex(timeline.index[timeline["candidate"].to_numpy(dtype=bool)])[
        list(STATE_FEATURES)
    ]


def _observed(
    frame: pd.DataFrame, decision_hours: np.ndarray, clicks: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """Clicks, and clicks on an update request, reported before each row's decision."""
    if clicks is None or clicks.empty:
        zeros = np.zeros(len(frame))
        return zeros, zeros
    clicks = clicks.assign(h=_hours(clicks["clicked_at"]))
    clicks = clicks.sort_values(["key", "h"], kind="stable")
    rows = pd.DataFrame({"key": frame["key"].to_numpy(), "h": decision_hours, "pos": np.arange(len(frame))})
    counts = []
    for subset in (clicks, clicks[clicks["template"] == UPDATE_TEMPLATE]):
        keyed = subset.assign(n=subset.groupby("key").cumcount() + 1)[["key", "h", "n"]]
        merged = pd.merge_asof(
            rows.sort_values("h"),
            keyed.sort_values("h"),
            on="h",
            by="key",
            allow_exact_matches=False,
        ).sort_values("pos")
        counts.append(merged["n"].fillna(0).to_numpy(dtype=float))
    return counts[0], np.minimum(counts[1], 1.0)

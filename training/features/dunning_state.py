"""Where a dunning cycle stands at a candidate time: what was tried and what was sent.

A *timeline* is one invoice's events in long format, logged or proposed:

    key, t (UTC), kind ("original" | "retry" | "message"), template, channel, candidate

``original`` is the first failed charge (one per key). Rows with ``candidate`` true get
features; the others are context (earlier attempts and messages). Training builds one
timeline per invoice from the logged rows; the policy builds one per proposed schedule.

Every feature here is known when the schedule is *planned* (at the failed charge):
it depends on what is scheduled, never on how the customer reacted. So the models'
probabilities chain correctly over a whole planned schedule (P(all fail) = product of
each event's failure probability given the earlier ones failed). Whether the card was
likely updated is therefore read from the plan: an update request sent long enough
before the candidate (``card_update_likely``), not from a click nobody has seen yet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.policy.timing import to_ns

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
    "card_update_likely",
)
UPDATE_PLAUSIBLE_HOURS = 24.0


def _hours(ts: pd.Series) -> np.ndarray:
    return to_ns(ts) / 3.6e12


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


def timeline_state(timeline: pd.DataFrame) -> pd.DataFrame:
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
    first_update = pd.Series(np.where(update, hours, np.nan), index=frame.index)
    first_update = first_update.groupby(frame["key"], sort=False).transform("min").to_numpy()
    state["card_update_likely"] = (hours - first_update >= UPDATE_PLAUSIBLE_HOURS).astype(float)
    candidate = frame["candidate"].to_numpy(dtype=bool)
    return state[candidate].reindex(timeline.index[timeline["candidate"].to_numpy(dtype=bool)])[
        list(STATE_FEATURES)
    ]

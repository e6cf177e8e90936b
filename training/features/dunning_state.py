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


def _latest_before(
    group: np.ndarray, times: np.ndarray, query_group: np.ndarray, query_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each query: how many of its group's times are strictly earlier, and the
    latest of them (NaN if none). ``group``/``times`` sorted by (group, time)."""
    if len(times) == 0:
        return np.zeros(len(query_t)), np.full(len(query_t), np.nan)
    span = np.float64(1e7)  # hours: keys are group * span + time (times << span)
    keys = group * span + times
    position = np.searchsorted(keys, query_group * span + query_t, side="left")
    first = np.searchsorted(keys, query_group * span - span / 2, side="left")
    count = position - first
    latest = np.where(count > 0, times[np.maximum(position - 1, 0)], np.nan)
    return count.astype(float), latest


def grid_state(
    event: np.ndarray,
    hours: np.ndarray,
    new_retries_before: np.ndarray,
    start: np.ndarray,
    last_attempt: np.ndarray,
    past_retries: np.ndarray,
    message_event: np.ndarray,
    message_hours: np.ndarray,
    message_is_update: np.ndarray,
    nominal_gap_hours: float,
) -> pd.DataFrame:
    """:func:`timeline_state` of candidate retries, without building their timelines.

    The schedule search scores hundreds of candidate retry times per event, the k-th new
    retry sitting after k failed ones at a nominal gap; building a timeline per candidate
    repeats the same context rows thousands of times. This computes the same features
    directly (``tests/features/test_features.py`` checks they are identical):

    * per candidate: ``event`` (position), ``hours`` (time, hours since epoch),
      ``new_retries_before`` (k);
    * per event: ``start`` (the original charge), ``last_attempt`` (the latest attempt
      already made), ``past_retries`` (retries already made);
    * planned messages: ``message_event``, ``message_hours``, ``message_is_update``,
      sorted by event and time.
    """
    k = new_retries_before.astype(float)
    previous_attempt = np.where(
        k > 0, np.maximum(hours - nominal_gap_hours, last_attempt[event]), last_attempt[event]
    )
    n_msg, last_msg = _latest_before(message_event, message_hours, event, hours)
    upd_event = message_event[message_is_update]
    upd_hours = message_hours[message_is_update]
    n_upd, last_upd = _latest_before(upd_event, upd_hours, event, hours)
    first_upd = np.full(len(start), np.nan)
    if len(upd_hours):
        np.fmin.at(first_upd, upd_event, upd_hours)
    return pd.DataFrame(
        {
            "hours_since_failure": hours - start[event],
            "retries_before": past_retries[event] + k,
            "hours_since_last_attempt": hours - previous_attempt,
            "messages_before": n_msg,
            "hours_since_last_message": hours - last_msg,
            "update_requests_before": n_upd,
            "hours_since_update_request": hours - last_upd,
            "same_template_before": np.nan,
            "card_update_likely": (hours - first_upd[event] >= UPDATE_PLAUSIBLE_HOURS).astype(float),
        }
    )[list(STATE_FEATURES)]

"""Plain-words reasons for a learned schedule, built vectorized and read per event.

Texts are numpy object arrays joined element-wise, and per-event facts are read by
position (``get_indexer``, ``bincount``; one event without an index) rather than through Series, group-bys and maps:
the API calls this for a single event, where pandas' fixed cost per call would dominate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from training.config.policy import PolicyConfig
from training.core.columnar import Table, column_array
from training.core.select import select
from training.models.matrix import EventMatrix, as_event_matrix
from training.policy.schedule_rows import MessageRows, RetryRows


def _words(values: np.ndarray) -> np.ndarray:
    """``str(value)`` with underscores as spaces (each distinct value converted once;
    one value, a lone request's, without the sort)."""
    if len(values) == 1:
        return np.array([str(values[0]).replace("_", " ")], dtype=object)
    distinct, inverse = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return np.array([v.replace("_", " ") for v in distinct], dtype=object)[inverse.ravel()]


def _percent(p: np.ndarray) -> np.ndarray:
    return np.round(p * 100).astype(int).astype(str).astype(object)


def _positions(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    if len(ids) == 1:  # one event (a lone request): no index built
        return np.where(values == ids[0], 0, -1)
    return pd.Index(ids).get_indexer(pd.Index(values))


def _count_per_event(ids: np.ndarray, event_ids: np.ndarray) -> np.ndarray:
    pos = _positions(ids, event_ids)
    return np.bincount(pos[pos >= 0], minlength=len(ids))


def _first_per_event(ids: np.ndarray, event_ids: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """First non-null value per event in row order ("" where there is none)."""
    pos = _positions(ids, event_ids)
    keep = (pos >= 0) & ~pd.isna(vals)
    pos, vals = pos[keep], vals[keep]
    if len(ids) == 1:  # one event (a lone request): its first kept value
        return np.array([vals[0] if len(vals) else ""], dtype=object)
    out = np.full(len(ids), "", dtype=object)
    events, first = np.unique(pos, return_index=True)
    out[events] = vals[first]
    return out


def _feature(features: pd.DataFrame | EventMatrix, ids: np.ndarray, column: str) -> np.ndarray:
    matrix = as_event_matrix(features)
    try:
        rows = matrix.positions(ids)
    except KeyError:
        missing = ~pd.Index(ids).isin(matrix.ids)
        raise KeyError(f"features: no row for event_id {ids[missing][0]!r}") from None
    return matrix.column(column)[rows]


def _column(rows: pd.DataFrame | RetryRows | MessageRows, name: str) -> np.ndarray:
    """A column of a schedule's rows or frame, as objects."""
    if isinstance(rows, RetryRows | MessageRows):
        return np.asarray(getattr(rows, name), dtype=object)
    return column_array(rows, name, object)


def model_reasons(
    events: Table,
    decisions: Table,
    features: pd.DataFrame | EventMatrix,
    retries: pd.DataFrame | RetryRows,
    messages: pd.DataFrame | MessageRows,
    expected: np.ndarray,
    baseline: np.ndarray,
    config: PolicyConfig,
) -> list[list[str]]:
    """One list of short sentences per event (same order as ``events``); a lone
    request's on Python scalars (:func:`_lone_reasons`: the same sentences)."""
    ids = column_array(events, "event_id", object)
    if len(ids) == 1:
        lone = _lone_reasons(events, decisions, features, retries, messages, expected, baseline)
        if lone is not None:
            return [[*lone[:2], _quiet(config), *lone[2:]]]
    categories = column_array(decisions, "category")
    category = _words(categories)
    n_retries = _count_per_event(ids, _column(retries, "event_id"))
    first_template = _first_per_event(
        ids, _column(messages, "event_id"), _column(messages, "template")
    )
    payday = _feature(features, ids, "cust_pay_day_of_month")
    funds = (categories == "insufficient_funds") | (categories == "limit_exceeded")
    retryable = column_array(decisions, "retryable")
    needs_update = column_array(decisions, "needs_update_first", bool)
    conditions = [
        retryable == "no",
        needs_update & (n_retries > 0),
        needs_update,
        funds & (n_retries > 0) & ~np.isnan(payday),
        (n_retries > 0),
    ]
    texts = [
        lambda: category + ": never retried (" + _words(column_array(decisions, "rule")) + ")",
        lambda: (
            category
            + ": asks the customer to update the payment method first; retries only once an update is plausible"
        ),
        lambda: (
            category
            + ": asks the customer to update the payment method; no retry fits before the window ends"
        ),
        lambda: (
            category
            + ": retries placed after the customer's usual payday (around day "
            + np.round(np.nan_to_num(payday)).astype(int).astype(str).astype(object)
            + " of the month)"
        ),
        lambda: category + ": retries placed at the times with the best expected success",
    ]
    # each sentence built only where some event may read it (a lone request reads one)
    timing = select(
        conditions,
        [text() if met.any() else "" for met, text in zip(conditions, texts, strict=True)],
        default=category + ": no retry allowed within the constraints; messages only",
    )
    message_text = np.where(
        first_template != "",
        "first message: " + _words(first_template),
        "no message expected to help",
    )
    gain = np.where(
        np.isnan(baseline),
        "",
        "expected recovery "
        + _percent(expected)
        + "% vs "
        + _percent(np.nan_to_num(baseline))
        + "% for the fixed schedule",
    )
    no_sms = column_array(events, "allow_sms", bool) & ~column_array(events, "sms_opt_in", bool)
    quiet = _quiet(config)
    out = []
    for parts in zip(timing, message_text, gain, no_sms, strict=True):
        reasons = [str(parts[0]), str(parts[1]), quiet]
        if parts[3]:
            reasons.append("no SMS: the customer has not opted in")
        if parts[2]:
            reasons.append(str(parts[2]))
        out.append(reasons)
    return out


def _quiet(config: PolicyConfig) -> str:
    hours = config.quiet_hours
    return f"messages outside quiet hours ({hours.start_hour:02d}:00-{hours.end_hour:02d}:00 local)"


def _lone_reasons(
    events: Table,
    decisions: Table,
    features: pd.DataFrame | EventMatrix,
    retries: pd.DataFrame | RetryRows,
    messages: pd.DataFrame | MessageRows,
    expected: np.ndarray,
    baseline: np.ndarray,
) -> list[str] | None:
    """:func:`model_reasons` of one event but its quiet-hours sentence, on Python values
    (the general path's two dozen numpy calls on one-element arrays were ~0.7 M
    instructions a lone decision); ``None`` where a figure is not finite (the general
    path writes what numpy's integer cast gives)."""
    ids = column_array(events, "event_id", object)
    payday = float(_feature(features, ids, _PAYDAY)[0])
    value, base = float(expected[0]), float(baseline[0])
    if not math.isfinite(value) or math.isinf(base) or math.isinf(payday):
        return None
    event_id = ids[0]
    category = column_array(decisions, "category")[0]
    words = str(category).replace("_", " ")
    n_retries = sum(1 for owner in _column(retries, "event_id") if owner == event_id)
    retryable = column_array(decisions, "retryable")[0]
    needs_update = bool(column_array(decisions, "needs_update_first", bool)[0])
    if retryable == "no":
        rule = str(column_array(decisions, "rule")[0]).replace("_", " ")
        timing = f"{words}: never retried ({rule})"
    elif needs_update and n_retries > 0:
        timing = (
            f"{words}: asks the customer to update the payment method first; retries only "
            "once an update is plausible"
        )
    elif needs_update:
        timing = (
            f"{words}: asks the customer to update the payment method; no retry fits before "
            "the window ends"
        )
    elif category in _FUNDS and n_retries > 0 and not math.isnan(payday):
        timing = (
            f"{words}: retries placed after the customer's usual payday (around day "
            f"{int(np.round(payday))} of the month)"
        )
    elif n_retries > 0:
        timing = f"{words}: retries placed at the times with the best expected success"
    else:
        timing = f"{words}: no retry allowed within the constraints; messages only"
    first = ""
    for owner, template in zip(
        _column(messages, "event_id"), _column(messages, "template"), strict=True
    ):
        if owner == event_id and (isinstance(template, str) or not pd.isna(template)):
            first = template
            break
    if first != "":
        message = "first message: " + str(first).replace("_", " ")
    else:
        message = "no message expected to help"
    out = [timing, message]
    sms = column_array(events, "allow_sms", bool)[0] & ~column_array(events, "sms_opt_in", bool)[0]
    if sms:
        out.append("no SMS: the customer has not opted in")
    if not math.isnan(base):
        out.append(f"expected recovery {_whole(value)}% vs {_whole(base)}% for the fixed schedule")
    return out


_PAYDAY = "cust_pay_day_of_month"
_FUNDS = ("insufficient_funds", "limit_exceeded")


def _whole(p: float) -> str:
    """:func:`_percent` of one finite probability."""
    return str(int(np.round(p * 100)))

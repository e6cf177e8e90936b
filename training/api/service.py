"""The recommendation logic shared by the API routes and batch scoring.

``recommend`` is the single code path from request items to responses: validate each item
(one bad item gives an :class:`ItemError` and does not stop the others), build the
``events`` frames, ask the decider, and turn its :class:`Decisions` into responses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from training.api.errors import ApiError, from_validation_error
from training.api.requests import requests_to_tables
from training.api.schemas import (
    ItemError,
    RecommendationRequest,
    RecommendationResponse,
)
from training.api.sensitive import scan
from training.core.columnar import utc_index
from training.core.localtime import NAT
from training.policy.decisions import Columns, Decider, Decisions

logger = logging.getLogger(__name__)

Result = RecommendationResponse | ItemError


def _invoice_id(item: Any) -> str | None:
    if isinstance(item, Mapping) and isinstance(item.get("invoice_id"), str):
        return item["invoice_id"]
    return None


def validate_item(
    item: Any, prefix: str = "", *, scanned: bool = False
) -> RecommendationRequest | ItemError:
    """One request item: sensitive-data scan, then the contract's validation.

    ``scanned``: the caller already ran :func:`training.api.sensitive.scan` over a body holding
    the item (the HTTP routes scan the whole body first), so the item is not scanned twice.
    """
    if isinstance(item, RecommendationRequest | ItemError):
        return item
    try:
        if not scanned:
            scan(item, prefix)
        return RecommendationRequest.model_validate(item)
    except ApiError as error:
        return ItemError(invoice_id=_invoice_id(item), error=error.body)
    except ValidationError as error:
        return ItemError(invoice_id=_invoice_id(item), error=from_validation_error(error, prefix))


def _probability(value: Any) -> float | None:
    return (
        None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    )


def _probability_list(values: Any) -> list[float | None]:
    """:func:`_probability` of each value; a float64 column as one ``tolist`` with its
    NaN set to ``None`` (the same values, no Python call per value)."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        out: list[float | None] = values.tolist()
        for i in np.flatnonzero(np.isnan(values)).tolist():
            out[i] = None
        return out
    return [_probability(v) for v in _listed(values)]


def _probabilities(table: Columns, column: str) -> list[float | None]:
    if column not in table:
        return [None] * len(table["event_id"])
    return _probability_list(table[column])


def _listed(values: Any) -> list[Any]:
    """A column's values as Python objects."""
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


_NO_TIME = np.iinfo(np.int64).max  # sorts last


def _positions(ids: Sequence[Any], values: np.ndarray) -> np.ndarray:
    """Position of each value among the unique ``ids`` (-1: absent); no index for one id."""
    if len(ids) == 1:
        return np.where(values == ids[0], 0, -1)
    return pd.Index(ids, dtype=object).get_indexer(values)


def _rows_by_event(
    table: Columns, time_column: str, asked: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[datetime | None]]:
    """Row order (by event, then time; stable, NaT last), the rows' event positions in
    ``asked`` (-1: not asked for) and their times as aware ``datetime`` (``None``: NaT)."""
    ns = np.asarray(table[time_column], dtype=np.int64)
    missing = ns == NAT
    event = _positions(asked, np.asarray(table["event_id"], dtype=object))
    order = np.lexsort((np.where(missing, _NO_TIME, ns), event))
    return order, event, _datetimes(ns, missing)


_FEW_TIMES = 64  # below this, pandas' fixed cost per call is more than it saves


def _datetimes(ns: np.ndarray, missing: np.ndarray) -> list[datetime | None]:
    """UTC ``datetime`` of int64 nanoseconds (to the microsecond below, as pandas'
    ``to_pydatetime``), ``None`` where ``missing``."""
    if len(ns) >= _FEW_TIMES:  # aware datetimes made in pandas' C loop
        aware: list[datetime | None] = utc_index(np.where(missing, 0, ns)).to_pydatetime().tolist()
        for i in np.flatnonzero(missing).tolist():
            aware[i] = None
        return aware
    naive = ns.view("datetime64[ns]").astype("datetime64[us]").tolist()
    gone = missing.tolist()
    return [None if out else t.replace(tzinfo=UTC) for t, out in zip(naive, gone, strict=True)]


def _group(rows: list[Any], order: np.ndarray, event: np.ndarray, n: int) -> list[list[Any]]:
    """Rows (already in ``order``) as one list per event position."""
    grouped: list[list[Any]] = [[] for _ in range(n)]
    for row, at in zip(rows, event[order].tolist(), strict=True):
        if at >= 0:
            grouped[at].append(row)
    return grouped


ByEvent = tuple[list[list[dict[str, Any]]], list[list[float]] | None]
"""Response rows, one list per asked event, and their own propensities grouped alike
(``None`` when the decider gave none)."""


def _own_propensities(
    table: Columns, order: np.ndarray, event: np.ndarray, n: int
) -> list[list[float]] | None:
    if "propensity" not in table:
        return None
    values = np.asarray(table["propensity"], dtype=np.float64)[order].tolist()
    return _group(values, order, event, n)


def _retries_by_event(retries: Columns, asked: Sequence[str]) -> ByEvent:
    """The ``retries`` rows as response retries, one list per asked event, in time order."""
    order, event, times = _rows_by_event(retries, "at", asked)
    p = _probabilities(retries, "success_probability")
    rows = [{"at": times[i], "success_probability": p[i]} for i in order.tolist()]
    n = len(asked)
    return _group(rows, order, event, n), _own_propensities(retries, order, event, n)


def _messages_by_event(messages: Columns, asked: Sequence[str]) -> ByEvent:
    """The ``messages`` rows as response messages, one list per asked event, in time order."""
    order, event, times = _rows_by_event(messages, "send_at", asked)
    p = _probabilities(messages, "response_probability")
    channel, template = _listed(messages["channel"]), _listed(messages["template"])
    rows = [
        {
            "send_at": times[i],
            "channel": channel[i],
            "template": template[i],
            "response_probability": p[i],
        }
        for i in order.tolist()
    ]
    n = len(asked)
    return _group(rows, order, event, n), _own_propensities(messages, order, event, n)


def _event_columns(events: Columns, asked: Sequence[str]) -> dict[str, list[Any]]:
    """The per-event columns of the response, as Python values in lists in ``asked``
    order (probabilities ``None`` for missing, propensities ``float``, fallbacks
    ``bool``, reasons lists); ``KeyError`` for an asked event the decider did not answer."""
    ids = np.asarray(events["event_id"], dtype=object)
    rows = _positions(list(ids), np.asarray(asked, dtype=object))
    if (rows < 0).any():
        raise KeyError(asked[int(np.flatnonzero(rows < 0)[0])])
    picked = rows.tolist()
    column = {
        name: [values[i] for i in picked]
        for name in ("decline_category", "retryable", "decision_id", "reasons")
        for values in [_listed(events[name])]
    }
    for name in ("expected_recovery_probability", "baseline_recovery_probability"):
        values = _probability_list(events[name])
        column[name] = [values[i] for i in picked]
    column["propensity"] = np.asarray(events["propensity"], dtype=np.float64)[rows].tolist()
    column["fallback"] = np.asarray(events["fallback"], dtype=bool)[rows].tolist()
    column["reasons"] = [list(reasons) for reasons in column["reasons"]]
    return column


def _response(
    request: RecommendationRequest,
    model_version: str,
    column: Mapping[str, list[Any]],
    i: int,
    retries: list[dict[str, Any]],
    messages: list[dict[str, Any]],
) -> RecommendationResponse:
    """The response to ``request``, the ``i``-th asked event, validated once."""
    return RecommendationResponse.model_validate(
        {
            "invoice_id": request.invoice_id,
            "model_version": model_version,
            "decline": {
                "category": column["decline_category"][i],
                "retryable": column["retryable"][i],
            },
            "retries": retries,
            "messages": messages,
            "expected_recovery_probability": column["expected_recovery_probability"][i],
            "baseline_recovery_probability": column["baseline_recovery_probability"][i],
            "decision_id": column["decision_id"][i],
            "propensity": column["propensity"][i],
            "reasons": column["reasons"][i],
            "fallback": column["fallback"][i],
        }
    )


def responses_from_decisions(
    requests: Sequence[RecommendationRequest],
    event_ids: Sequence[str],
    decisions: Decisions,
    model_version: str,
) -> list[RecommendationResponse]:
    """One response per request, in order, from the decider's long-format tables.

    Read as columns (a decider's own arrays, no frame built or read back), each column
    turned into Python values at once (times, probabilities, flags); each response is
    validated once, in pydantic's compiled validator.
    """
    if len(requests) != len(event_ids):
        raise ValueError("responses_from_decisions: one event id per request")
    asked = list(event_ids)
    tables = decisions.columns()
    retries, retry_own = _retries_by_event(tables.retries, asked)
    messages, message_own = _messages_by_event(tables.messages, asked)
    column = _event_columns(tables.events, asked)
    responses = [
        _response(request, model_version, column, i, retries[i], messages[i])
        for i, request in enumerate(requests)
    ]
    if retry_own is not None and message_own is not None:
        for response, retry_p, message_p in zip(responses, retry_own, message_own, strict=True):
            response.keep_row_propensities(retry_p, message_p)
    return responses


LOOKUP_FIELDS = ("country", "timezone", "signup_at", "sms_opt_in")


def customers_to_look_up(validated: Sequence[RecommendationRequest | ItemError]) -> list[str]:
    """Customer ids of the valid requests whose ``customer`` leaves a field out (only those
    need what the service knows about them)."""
    return [
        v.customer_id
        for v in validated
        if isinstance(v, RecommendationRequest)
        and (v.customer is None or any(getattr(v.customer, f) is None for f in LOOKUP_FIELDS))
    ]


def customer_knowledge(
    decider: Decider,
    customer_ids: Sequence[str],
    stored: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """What the service knows about these customers, field by field.

    A decider may know customers from its training history through an optional method
    ``known_customers(ids) -> {customer_id: {field: value}}``; values stored from earlier
    requests (``stored``) are newer and win over it. The request's own values win over
    both (in :func:`training.api.requests.requests_to_frames`).
    """
    lookup = getattr(decider, "known_customers", None)
    known = {k: dict(v) for k, v in lookup(list(customer_ids)).items()} if callable(lookup) else {}
    for customer_id, fields in stored.items():
        known.setdefault(customer_id, {}).update({k: v for k, v in fields.items() if v is not None})
    return known


def decide(
    decider: Decider,
    requests: Sequence[RecommendationRequest],
    known_customers: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[RecommendationResponse]:
    """Responses for validated requests, in order."""
    if not requests:
        return []
    event_ids = [str(i) for i in range(len(requests))]
    events, previous = requests_to_tables(
        [r.model_dump() for r in requests], event_ids, known_customers or {}
    )
    decisions = decider.decide(events, previous)
    return responses_from_decisions(requests, event_ids, decisions, decider.model_version)


def recommend(
    decider: Decider,
    items: Sequence[Any],
    *,
    known_customers: Mapping[str, Mapping[str, Any]] | None = None,
    fallback: Decider | None = None,
    prefix: str = "items",
) -> list[Result]:
    """Validate every item and answer the valid ones; errors keep their position.

    ``items`` may be raw JSON objects, validated requests or item errors (passed through). When the decider raises,
    ``fallback`` (if given) answers instead, so a broken model never breaks the API.
    """
    validated = [
        validate_item(item, f"{prefix}[{i}]" if prefix else "") for i, item in enumerate(items)
    ]
    valid = [v for v in validated if isinstance(v, RecommendationRequest)]
    try:
        answered = decide(decider, valid, known_customers)
    except Exception:
        if fallback is None or fallback is decider:
            raise
        logger.exception("decider %s failed; answering with the fallback", decider.model_version)
        answered = decide(fallback, valid, known_customers)
    answers = iter(answered)
    return [next(answers) if isinstance(v, RecommendationRequest) else v for v in validated]

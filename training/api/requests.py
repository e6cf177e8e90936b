"""Turn recommendation requests (API contract) into the ``events`` and ``previous_attempts`` frames.

The API validates a request first (``training.api.schemas``) and hands this module plain
mappings (``model_dump()``), so batch scoring can call it on parsed JSON lines too.

Documented defaults, applied field by field:

* ``constraints`` missing (or a field of it): ``max_retries`` 4, ``window_days`` 14,
  ``max_messages`` 3, ``channels`` email and SMS.
* ``customer`` missing (or a field of it): first the values the service already knows
  for that ``customer_id`` (``known_customers``: from earlier requests and, later, the
  model artifact), else the cold-start defaults: ``timezone`` UTC, ``sms_opt_in`` false
  (no SMS without consent), ``country`` and ``signup_at`` unknown (null / NaT).
  The request's own values always win. ``customer_source`` says where they came from:
  ``request``, ``known`` or ``default`` (when any field fell back to a default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from training.config.request_defaults import COLD_START_CUSTOMER, DEFAULT_CONSTRAINTS
from training.contract.tables import CUSTOMER_FIELDS
from training.core.columnar import ColumnTable, frame_of_arrays, utc_index
from training.core.frames import EVENT_COLUMNS

EXTRA_EVENT_COLUMNS = ("plan", "customer_source")
PREVIOUS_ATTEMPT_COLUMNS = (
    "event_id",
    "attempted_at",
    "decline_code",
    "merchant_advice_code",
    "initiated_by",
)


def _customer_values(
    request: Mapping[str, Any], known: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    given = request.get("customer") or {}
    stored = known.get(request["customer_id"], {})
    values: dict[str, Any] = {}
    sources: set[str] = set()
    for name in CUSTOMER_FIELDS:
        if given.get(name) is not None:
            values[name], source = given[name], "request"
        elif stored.get(name) is not None and not pd.isna(stored[name]):
            values[name], source = stored[name], "known"
        else:
            values[name], source = COLD_START_CUSTOMER[name], "default"
        if name != "plan":
            sources.add(source)
    values["customer_source"] = (
        "default" if "default" in sources else "known" if "known" in sources else "request"
    )
    return values


def _constraint_values(request: Mapping[str, Any]) -> dict[str, Any]:
    given = request.get("constraints") or {}
    values: dict[str, Any] = {
        k: given.get(k) if given.get(k) is not None else v for k, v in DEFAULT_CONSTRAINTS.items()
    }
    channels = set(values.pop("channels"))
    values["allow_email"] = "email" in channels
    values["allow_sms"] = "sms" in channels
    return values


def known_customers_index(customers: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """``customer_id`` → field values, from a customers frame (contract columns)."""
    if customers is None or customers.empty:
        return {}
    cols = [c for c in CUSTOMER_FIELDS if c in customers.columns]
    return customers.set_index("customer_id")[cols].to_dict(orient="index")


OBJECT_COLUMNS = (
    "event_id",
    "invoice_id",
    "customer_id",
    "currency",
    "payment_method",
    "card_brand",
    "processor",
    "decline_code",
    "merchant_advice_code",
    "country",
    "timezone",
    "plan",
    "customer_source",
)
INT_COLUMNS = ("amount_minor", "max_retries", "window_days", "max_messages")
BOOL_COLUMNS = ("sms_opt_in", "allow_email", "allow_sms")
UTC_COLUMNS = ("failed_at", "signup_at")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NAT = np.iinfo(np.int64).min
_NS_MIN, _NS_MAX = pd.Timestamp.min.value, pd.Timestamp.max.value


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)  # never 2-D, whatever the values are
    out[:] = values
    return out


def _utc(values: list[Any]) -> pd.DatetimeIndex:
    """Timestamps (aware ``datetime``, ISO strings, ``None``) as UTC nanoseconds."""
    fast = _aware_ns(values)
    if fast is not None:
        return utc_index(fast)
    return pd.DatetimeIndex(pd.to_datetime(_objects(values), utc=True)).as_unit("ns")


def _aware_ns(values: list[Any]) -> np.ndarray | None:
    """UTC int64 nanoseconds of aware ``datetime`` values (``None``: NaT), the API's case,
    by exact integer arithmetic (``pd.to_datetime`` costs tens of microseconds a call);
    ``None`` when any value is something else or outside the nanosecond range."""
    ns: list[int] = []
    for value in values:
        if value is None:
            ns.append(_NAT)
        elif type(value) is datetime and value.utcoffset() is not None:
            ns.append((value - _EPOCH) // _MICROSECOND * 1000)
        else:
            return None
    if any(not _NS_MIN <= v <= _NS_MAX for v in ns if v != _NAT):
        return None
    return np.array(ns, dtype="int64")


def _typed(name: str, values: list[Any]) -> Any:
    """One column of values with the contract's dtype (no per-cell inference)."""
    if name in UTC_COLUMNS or name == "attempted_at":
        return _utc(values)
    if name in INT_COLUMNS:
        return np.array(values, dtype="int64")
    if name in BOOL_COLUMNS:
        return _objects(values).astype(bool)
    return _objects(values)


def _typed_columns(columns: dict[str, Any]) -> dict[str, Any]:
    """Columns with the contract's dtypes, built column by column (no per-cell inference);
    values given as arrays (not lists) are taken as they are."""
    return {
        name: _typed(name, values) if isinstance(values, list) else values
        for name, values in columns.items()
    }


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    """:func:`_typed_columns` as a frame."""
    return frame_of_arrays(_typed_columns(columns))  # typed: inference would cost ~0.3 ms


@cache
def _no_previous_attempts() -> pd.DataFrame:
    """The empty ``previous_attempts`` frame, with its dtypes (built once)."""
    return _frame({name: [] for name in PREVIOUS_ATTEMPT_COLUMNS})


def requests_to_frames(
    requests: Sequence[Mapping[str, Any]],
    event_ids: Sequence[str] | None = None,
    known_customers: pd.DataFrame | Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build ``events`` (one row per request) and ``previous_attempts`` (long, sorted by
    ``event_id`` then ``attempted_at``).

    ``event_ids`` defaults to the request positions as strings ("0", "1", ...).
    """
    events, previous = requests_to_tables(requests, event_ids, known_customers)
    return events.frame(), previous


def requests_to_tables(
    requests: Sequence[Mapping[str, Any]],
    event_ids: Sequence[str] | None = None,
    known_customers: pd.DataFrame | Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[ColumnTable, pd.DataFrame]:
    """:func:`requests_to_frames` with ``events`` as columns (what the service passes a
    decider: a lone request's events frame, two dozen one-row blocks, cost ~0.1 ms)."""
    ids = [str(i) for i in range(len(requests))] if event_ids is None else list(event_ids)
    if len(ids) != len(requests):
        raise ValueError("event_ids must have one id per request")
    known = (
        known_customers_index(known_customers)
        if known_customers is None or isinstance(known_customers, pd.DataFrame)
        else dict(known_customers)
    )
    rows = [
        {
            "event_id": event_id,
            "invoice_id": r["invoice_id"],
            "customer_id": r["customer_id"],
            "amount_minor": r["amount_minor"],
            "currency": r["currency"],
            "payment_method": r["payment_method"],
            "card_brand": r.get("card_brand"),
            "processor": r["processor"],
            "decline_code": r["decline_code"],
            "merchant_advice_code": r.get("merchant_advice_code"),
            "failed_at": r["failed_at"],
            **_customer_values(r, known),
            **_constraint_values(r),
        }
        for event_id, r in zip(ids, requests, strict=True)
    ]
    previous = _previous_attempts(ids, requests)
    failed_at = _utc([row["failed_at"] for row in rows])
    updated = _card_updated(
        [r.get("payment_method_updated_at") for r in requests], ids, failed_at, previous
    )
    columns: dict[str, Any] = {
        name: [row[name] for row in rows] for name in (*EVENT_COLUMNS, *EXTRA_EVENT_COLUMNS)
    }
    events = ColumnTable.of(
        _typed_columns({**columns, "failed_at": failed_at, "card_updated": updated})
    )
    return events, previous


def _previous_attempts(ids: list[str], requests: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The requests' ``previous_attempts`` as one frame, by event id, then time (stable,
    NaT last, as ``sort_values``)."""
    pairs = [
        (event_id, a)
        for event_id, r in zip(ids, requests, strict=True)
        for a in r.get("previous_attempts") or []
    ]
    if not pairs:
        return _no_previous_attempts().copy(deep=False)  # shares only its empty columns
    previous = _frame(
        {
            "event_id": [event_id for event_id, _ in pairs],
            "attempted_at": [a["attempted_at"] for _, a in pairs],
            "decline_code": [a.get("decline_code") for _, a in pairs],
            "merchant_advice_code": [a.get("merchant_advice_code") for _, a in pairs],
            "initiated_by": [a.get("initiated_by") or "merchant" for _, a in pairs],
        }
    )
    if len(previous) > 1:
        at = previous["attempted_at"].array.asi8
        at = np.where(previous["attempted_at"].isna().to_numpy(), np.iinfo(np.int64).max, at)
        rank = pd.factorize(previous["event_id"].to_numpy(), sort=True)[0]
        previous = previous.take(np.lexsort((at, rank))).reset_index(drop=True)
    return previous


def _card_updated(
    given: list[Any], ids: list[str], failed_at: pd.DatetimeIndex, previous: pd.DataFrame
) -> np.ndarray:
    """Per event: the payment method was updated after the charge's first attempt (the
    earliest of ``failed_at`` and its previous attempts), so the rules may retry an
    ``after_update`` decline (``payment_method_updated_at``, docs/api.md)."""
    if all(value is None for value in given):
        return np.zeros(len(ids), dtype=bool)
    updated = _utc(given).asi8
    first = failed_at.asi8.copy()  # NaT (the smallest int64) never wins the minimum below
    attempted = previous["attempted_at"].array.asi8
    pos = pd.Index(ids).get_indexer(previous["event_id"].to_numpy())
    known = attempted != _NAT
    np.minimum.at(first, pos[known], attempted[known])
    first = np.where(failed_at.asi8 == _NAT, _NAT, first)
    return (updated != _NAT) & (first != _NAT) & (updated > first)

"""Customer features as of a decision time: tenure, failure and recovery history, pay
cycle, active hours, channel responsiveness.

Computed per customer with running sums over the event log (a group-by over
``customer_id``) and one binary search per decision, so every feature counts only
events strictly before the decision time, for one decision or a million alike.
A customer without history gets NaN (LightGBM's missing value) and zero counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.core.localtime import to_ns
from training.features.history_log import ACTIVITY_WEIGHT, FLAGS

SPAN = np.int64(10**11)  # seconds: keys are customer * SPAN + epoch seconds
YEAR_S = 365 * 86400
MEAN_MONTH_DAYS = 30.44

CUSTOMER_FEATURES = (
    "cust_tenure_days",
    "cust_observed_days",
    "cust_observed_share",
    "cust_failures_per_year",
    "cust_failures_total",
    "cust_failures_12m",
    "cust_days_since_last_failure",
    "cust_recoveries_total",
    "cust_recovery_rate",
    "cust_recovery_by_retry_share",
    "cust_last_recovery_by_retry",
    "cust_payments",
    "cust_pay_day_of_month",
    "cust_pay_day_strength",
    "cust_pay_weekday",
    "cust_pay_weekday_strength",
    "cust_activity",
    "cust_active_hour",
    "cust_active_hour_strength",
    "cust_email_sent",
    "cust_email_click_rate",
    "cust_sms_sent",
    "cust_sms_click_rate",
)
HOUR_HARMONICS = (1, 2)
HOUR_PROFILE_COLUMNS = tuple(
    f"cust_{kind}_h{k}_{part}"
    for kind in ("sent", "click")
    for k in HOUR_HARMONICS
    for part in ("cos", "sin")
)
"""Per customer, the first two Fourier coefficients of the local hours of the messages
sent to them and of their clicks, as of the decision: enough to read the kernel-smoothed
response rate near any candidate hour (:func:`hour_response`) without the events. Carried
along with the customer features, not model inputs themselves."""
CUSTOMER_CONTEXT = ("cust_clicks", *HOUR_PROFILE_COLUMNS)
CIRCLES = ("pay_dom", "pay_wd", "act_hour")
"""The circular running sums (cosine and sine of an angle): the payday of the month, of
the week, the active hour; their periods, as a column (one row of sums each):"""
CIRCLE_PERIODS = np.array([[MEAN_MONTH_DAYS], [7.0], [24.0]])
LATEST_COLUMNS = ("last_failure_s", "last_by_retry_s", "last_by_customer_s")
"""Running maxima of :func:`running_sums`: the latest such event's epoch seconds (-1: none)."""
"""Customer columns that feed features of the candidate rows but are no inputs."""


def _seconds(ts: pd.Series) -> np.ndarray:
    """Epoch seconds (int64); missing times become the minimum int64."""
    return _ns_to_seconds(to_ns(ts))


def _ns_to_seconds(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64)
    return np.where(values == np.iinfo(np.int64).min, values, values // 10**9)


def running_sums(log: pd.DataFrame) -> pd.DataFrame:
    """Per-customer running totals of the log (sorted by customer, time)."""
    angles = pd.DataFrame(
        {
            "pay_dom": 2 * np.pi * (log["local_day_of_month"] - 1) / log["days_in_month"],
            "pay_wd": 2 * np.pi * log["local_weekday"] / 7.0,
            "act_hour": 2 * np.pi * log["local_hour"] / 24.0,
        }
    )
    values = pd.DataFrame({f: log[f].astype(np.int64) for f in FLAGS})
    pay = log["payment"].to_numpy()
    sent = log["email_sent"].to_numpy() + log["sms_sent"].to_numpy()
    click = log["email_click"].to_numpy() + log["sms_click"].to_numpy()
    for k in HOUR_HARMONICS:
        angle = k * angles["act_hour"]
        for kind, weight in (("sent", sent), ("click", click)):
            values[f"{kind}_h{k}_cos"] = np.cos(angle) * weight
            values[f"{kind}_h{k}_sin"] = np.sin(angle) * weight
    act = log["activity"].to_numpy()
    if ACTIVITY_WEIGHT in log:  # learned weights of the activity events (h95)
        act = log[ACTIVITY_WEIGHT].to_numpy(dtype=float)
        values[ACTIVITY_WEIGHT] = act
    for name, weight in (("pay_dom", pay), ("pay_wd", pay), ("act_hour", act)):
        values[f"{name}_cos"] = np.cos(angles[name]) * weight
        values[f"{name}_sin"] = np.sin(angles[name]) * weight
    seconds = _seconds(log["at"])
    values["last_failure_s"] = np.where(log["failure"] == 1, seconds, -1)
    values["last_by_retry_s"] = np.where(log["recovery_by_retry"] == 1, seconds, -1)
    values["last_by_customer_s"] = np.where(log["recovery_by_customer"] == 1, seconds, -1)
    groups = log["customer_id"].to_numpy()
    sums = values.drop(columns=list(LATEST_COLUMNS))
    out = sums.groupby(groups, sort=False).cumsum()
    maxima = values[list(LATEST_COLUMNS)]
    out = out.join(maxima.groupby(groups, sort=False).cummax())
    return out


def _lookup(
    log_codes: np.ndarray, log_keys: np.ndarray, codes: np.ndarray, seconds: np.ndarray
) -> np.ndarray:
    """Index of the customer's last log row strictly before ``seconds`` (-1 if none)."""
    if len(log_keys) == 0:
        return np.full(len(codes), -1)
    idx = np.searchsorted(log_keys, codes * SPAN + seconds, side="left") - 1
    valid = (idx >= 0) & (log_codes[np.maximum(idx, 0)] == codes)
    return np.where(valid, idx, -1)


def _reader(index: CustomerIndex, idx: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
    """The running sums (``rows`` of ``index.sums``) at log row ``idx`` of each decision,
    a column's empty value (``index.empty``) where ``idx`` is -1: every column in one
    gather, a row each (a decision reads some thirty)."""
    block, empty = index.sums[rows], index.empty[rows, None]
    if block.shape[1] == 0:
        return np.repeat(empty, len(idx), axis=1)
    return np.where(idx >= 0, block.take(np.maximum(idx, 0), axis=1), empty)


HOUR_KERNEL = {0: 1.5, 1: 2.0, 2: 0.5}
"""(1 + cos d)^2 as harmonics of the hour difference d (in radians of the day); divided
by 4: weight 1 at the same hour, 0.87 at 2 h, 0.25 at 6 h, 0 at 12 h away."""


def hour_kernel(hours: np.ndarray) -> np.ndarray:
    """:data:`HOUR_KERNEL` of a distance in hours (1 at 0 h, 0 at 12 h; NaN stays NaN)."""
    return (1.0 + np.cos(2 * np.pi * np.asarray(hours, dtype=float) / 24.0)) ** 2 / 4.0


Harmonics = dict[int, tuple[np.ndarray, np.ndarray]]
"""Per harmonic ``k`` of :data:`HOUR_HARMONICS`: the cosine and sine of ``k`` times the
hours' angle on the day (:func:`hour_harmonics`)."""


def hour_harmonics(hour: np.ndarray) -> Harmonics:
    """The cosines and sines :func:`hour_response` weighs the profile with, of ``hour``
    (local, in hours): the same for every customer (a table of every minute of the day
    computes them once per process)."""
    angle = 2 * np.pi * np.asarray(hour, dtype=float) / 24.0
    return {k: (np.cos(k * angle), np.sin(k * angle)) for k in HOUR_HARMONICS}


def hour_response(
    hour: np.ndarray,
    sent: np.ndarray,
    clicks: np.ndarray,
    profile: Mapping[str, np.ndarray],
    harmonics: Harmonics | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The customer's own past click rate of messages near ``hour`` (local), smoothed by
    :data:`HOUR_KERNEL` over the hours of the day, and the kernel weight of the past
    sends behind it (how much evidence it rests on, in messages sent at that very hour).

    ``sent`` and ``clicks``: the customer's total messages and clicks; ``profile``: the
    :data:`HOUR_PROFILE_COLUMNS` by name; ``harmonics``: :func:`hour_harmonics` of
    ``hour``, when the caller has them. NaN where nothing was sent near the hour.
    Clicks are counted at their own hour (as of the decision, a click is known only
    once it happened), minutes to hours after the send.
    """
    if harmonics is None:
        harmonics = hour_harmonics(hour)
    weight = {"sent": HOUR_KERNEL[0] * sent, "click": HOUR_KERNEL[0] * clicks}
    for k in HOUR_HARMONICS:
        cos, sin = harmonics[k]
        for kind in weight:
            weight[kind] = weight[kind] + HOUR_KERNEL[k] * (
                cos * profile[f"cust_{kind}_h{k}_cos"] + sin * profile[f"cust_{kind}_h{k}_sin"]
            )
    sends = np.maximum(weight["sent"], 0.0) / 4.0  # round-off can dip below zero
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.clip(weight["click"] / 4.0 / sends, 0.0, 1.0)
    return np.where(sends > 1e-9, rate, np.nan), sends


def _circular_mean(
    cos: np.ndarray, sin: np.ndarray, n: np.ndarray, period: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        angle = np.mod(np.arctan2(sin, cos), 2 * np.pi)
        strength = np.sqrt(cos**2 + sin**2) / n
    value = angle / (2 * np.pi) * period
    return np.where(n > 0, value, np.nan), np.where(n > 0, strength, np.nan)


@dataclass
class CustomerIndex:
    """The log's per-customer running sums, ready for as-of lookups.

    Built once per log (training builds it once; the scorer keeps it), so a decision
    costs two binary searches instead of a pass over the whole log.
    """

    customers: pd.Index
    log_codes: np.ndarray
    log_keys: np.ndarray
    sums: np.ndarray  # (columns, log rows): a row per running sum, named in ``rows``
    rows: dict[str, int]
    empty: np.ndarray  # per row: its value before the customer's first log row
    history_start: float

    def at(self, values: np.ndarray, column: str) -> np.ndarray:
        """Column ``column`` of :func:`_reader`'s ``values`` (a view)."""
        return values[self.rows[column]]

    @classmethod
    def build(cls, log: pd.DataFrame, history_start: pd.Timestamp | None = None) -> CustomerIndex:
        customers = pd.Index(pd.unique(log["customer_id"].to_numpy()))
        log_codes = customers.get_indexer(log["customer_id"]).astype(np.int64)
        if history_start is None:
            history_start = log["at"].min() if len(log) else None
        start = (
            float(_seconds(pd.Series([history_start]))[0]) if history_start is not None else np.nan
        )
        sums = running_sums(log)
        names = list(sums.columns)
        return cls(
            customers,
            log_codes,
            log_codes * SPAN + _seconds(log["at"]),
            np.ascontiguousarray(sums.to_numpy(dtype=float).T),
            {name: row for row, name in enumerate(names)},
            np.array([-1.0 if name in LATEST_COLUMNS else 0.0 for name in names]),
            start,
        )


def customer_features(
    decisions: pd.DataFrame,
    log: pd.DataFrame | None = None,
    history_start: pd.Timestamp | None = None,
    index: CustomerIndex | None = None,
) -> pd.DataFrame:
    """Features for each decision row (columns customer_id, as_of, signup_at).

    ``log`` is a customer event log (:mod:`training.features.history_log`) sorted by
    customer and time (or pass its prebuilt ``index``). ``history_start`` is when the
    exported history begins (default: the log's first event): a count of failures means
    little without how long the customer was observed, and a history export always
    starts somewhere, so ``cust_observed_days`` (since signup or the export start,
    whichever is later) and the failure rate per observed year are features too.
    ``cust_observed_share`` is that span over the tenure, in [0, 1] (1: observed since
    signup): bounded where the days grow with calendar time without bound, past every
    training row's on a held-out period (docs/evaluation.md, h78 and h79).
    Returns a frame with :data:`CUSTOMER_FEATURES` and :data:`CUSTOMER_CONTEXT`, same index.
    """
    if index is None:
        index = CustomerIndex.build(log, history_start)
    columns = customer_columns(
        decisions["customer_id"].to_numpy(),
        to_ns(decisions["as_of"]),
        to_ns(decisions["signup_at"]),
        index,
    )
    values = np.column_stack(list(columns.values())) if len(decisions) else None
    return pd.DataFrame(values, index=decisions.index, columns=list(columns), dtype=float)


def _observed_share(observed_days: np.ndarray, tenure_days: np.ndarray) -> np.ndarray:
    """The share of the tenure the export observes, clipped to [0, 1]; 1 for a decision
    at or before signup (nothing unobserved), NaN without a signup date."""
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.clip(observed_days / tenure_days, 0.0, 1.0)
    return np.where(tenure_days <= 0, 1.0, share)


def _customer_codes(customers: pd.Index, customer_ids: np.ndarray) -> np.ndarray:
    """Each id's position in the (unique) ``customers``, -1 when unknown; one id (a lone
    request) by ``get_loc``, ~1 µs where ``get_indexer`` costs ~100 µs."""
    if len(customer_ids) == 1:
        try:
            code = customers.get_loc(customer_ids[0])
        except (KeyError, TypeError):
            code = -1
        if isinstance(code, int):
            return np.array([code], dtype=np.int64)
    return customers.get_indexer(customer_ids).astype(np.int64)


def customer_columns(
    customer_ids: np.ndarray, as_of_ns: np.ndarray, signup_ns: np.ndarray, index: CustomerIndex
) -> dict[str, np.ndarray]:
    """:data:`CUSTOMER_FEATURES` then :data:`CUSTOMER_CONTEXT` (in that order) as float
    arrays, one value per decision.

    ``as_of_ns`` and ``signup_ns`` are UTC int64 nanoseconds (NaT allowed for signup);
    the numpy core of :func:`customer_features`, for callers that build one frame. One
    decision (a lone request) takes :func:`_lone_customer_columns`: the same values.
    """
    if len(customer_ids) == 1:
        lone = _lone_customer_columns(customer_ids, as_of_ns, signup_ns, index)
        if lone is not None:
            return lone
    return _general_customer_columns(customer_ids, as_of_ns, signup_ns, index)


def _general_customer_columns(
    customer_ids: np.ndarray, as_of_ns: np.ndarray, signup_ns: np.ndarray, index: CustomerIndex
) -> dict[str, np.ndarray]:
    """:func:`customer_columns` of any number of decisions, on arrays."""
    codes = _customer_codes(index.customers, customer_ids)
    as_of = _ns_to_seconds(as_of_ns)
    known = codes >= 0
    now = np.where(known, _lookup(index.log_codes, index.log_keys, codes, as_of), -1)
    year_ago = np.where(known, _lookup(index.log_codes, index.log_keys, codes, as_of - YEAR_S), -1)
    failure_row = slice(index.rows["failure"], index.rows["failure"] + 1)

    sums = _reader(index, now)  # some thirty running sums as of the decision

    def at(column: str) -> np.ndarray:
        return index.at(sums, column)

    failures = at("failure")
    recoveries = at("recovery")
    by_retry = at("recovery_by_retry")
    payments = at("payment")
    activity = at("activity")
    email_sent, sms_sent = at("email_sent"), at("sms_sent")
    last_failure = at("last_failure_s")
    last_retry, last_customer = at("last_by_retry_s"), at("last_by_customer_s")
    # the payday of the month, of the week and the active hour: one call, a row each
    weight = ACTIVITY_WEIGHT if ACTIVITY_WEIGHT in index.rows else "activity"
    rows = [index.rows[name] for name in ("payment", "payment", weight)]
    rows += [index.rows[f"{angle}_{part}"] for part in ("cos", "sin") for angle in CIRCLES]
    counts, cos, sin = sums[rows].reshape(3, len(CIRCLES), len(now))
    (pay_dom, pay_wd, act_hour), (pay_dom_r, pay_wd_r, act_r) = _circular_mean(
        cos, sin, counts, CIRCLE_PERIODS
    )
    signup = _ns_to_seconds(signup_ns).astype(float)
    signup[signup == float(np.iinfo(np.int64).min)] = np.nan
    start = index.history_start
    if np.isnan(start):
        start = float(as_of.min()) if len(as_of) else 0.0
    observed_days = (as_of - np.fmax(signup, start)) / 86400.0
    tenure_days = (as_of - signup) / 86400.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "cust_tenure_days": tenure_days,
            "cust_observed_days": observed_days,
            "cust_observed_share": _observed_share(observed_days, tenure_days),
            "cust_failures_per_year": failures / np.maximum(observed_days, 30.0) * 365.0,
            "cust_failures_total": failures,
            "cust_failures_12m": failures - _reader(index, year_ago, failure_row)[0],
            "cust_days_since_last_failure": np.where(
                last_failure >= 0, (as_of - last_failure) / 86400.0, np.nan
            ),
            "cust_recoveries_total": recoveries,
            "cust_recovery_rate": np.where(failures > 0, recoveries / failures, np.nan),
            "cust_recovery_by_retry_share": np.where(recoveries > 0, by_retry / recoveries, np.nan),
            "cust_last_recovery_by_retry": np.where(
                np.maximum(last_retry, last_customer) >= 0,
                (last_retry > last_customer).astype(float),
                np.nan,
            ),
            "cust_payments": payments,
            "cust_pay_day_of_month": pay_dom + np.where(payments > 0, 1.0, np.nan),
            "cust_pay_day_strength": pay_dom_r,
            "cust_pay_weekday": pay_wd,
            "cust_pay_weekday_strength": pay_wd_r,
            "cust_activity": activity,
            "cust_active_hour": act_hour,
            "cust_active_hour_strength": act_r,
            "cust_email_sent": email_sent,
            "cust_email_click_rate": np.where(
                email_sent > 0, at("email_click") / email_sent, np.nan
            ),
            "cust_sms_sent": sms_sent,
            "cust_sms_click_rate": np.where(sms_sent > 0, at("sms_click") / sms_sent, np.nan),
            "cust_clicks": at("email_click") + at("sms_click"),
            **{name: at(name.removeprefix("cust_")) for name in HOUR_PROFILE_COLUMNS},
        }


_INT64 = np.iinfo(np.int64)


def _lone_row(index: CustomerIndex, code: int, seconds: int) -> int | None:
    """:func:`_lookup` of one decision on Python integers (-1: none); None where the key
    leaves int64 (numpy's would wrap)."""
    if code < 0 or len(index.log_keys) == 0:
        return -1
    key = code * int(SPAN) + seconds
    if not _INT64.min <= key <= _INT64.max:
        return None
    row = int(index.log_keys.searchsorted(key, side="left")) - 1
    return row if row >= 0 and int(index.log_codes[row]) == code else -1


def _lone_customer_columns(
    customer_ids: np.ndarray, as_of_ns: np.ndarray, signup_ns: np.ndarray, index: CustomerIndex
) -> dict[str, np.ndarray] | None:
    """:func:`_general_customer_columns` of one decision: the running sums read as
    Python floats, each feature worked out with the same float operations in the same
    order (``np.where``'s branches as conditions, NaN kept where numpy keeps it), the
    circular means by :func:`_circular_mean` itself (numpy's ``arctan2``); one array of
    every value, a 1-element view per column. None (the general path) for a missing
    decision time or a key outside int64."""
    code = int(_customer_codes(index.customers, customer_ids)[0])
    as_of_raw = int(as_of_ns[0])
    if as_of_raw == _INT64.min:
        return None
    as_of = as_of_raw // 10**9
    now = _lone_row(index, code, as_of)
    year_ago = _lone_row(index, code, as_of - YEAR_S)
    if now is None or year_ago is None:
        return None
    rows = index.rows
    sums = index.sums[:, now].tolist() if now >= 0 else index.empty.tolist()

    def at(column: str) -> float:
        return sums[rows[column]]

    failures, recoveries, by_retry = at("failure"), at("recovery"), at("recovery_by_retry")
    payments, email_sent, sms_sent = at("payment"), at("email_sent"), at("sms_sent")
    last_failure = at("last_failure_s")
    last_retry, last_customer = at("last_by_retry_s"), at("last_by_customer_s")
    weight = ACTIVITY_WEIGHT if ACTIVITY_WEIGHT in rows else "activity"
    circle = [rows[name] for name in ("payment", "payment", weight)]
    circle += [rows[f"{angle}_{part}"] for part in ("cos", "sin") for angle in CIRCLES]
    (pay_dom, pay_wd, act_hour), (pay_dom_r, pay_wd_r, act_r) = _lone_circular_means(
        [sums[k] for k in circle]
    )
    signup_raw = int(signup_ns[0])
    signup = math.nan if signup_raw == _INT64.min else float(signup_raw // 10**9)
    start = index.history_start
    now_s = float(as_of)
    if math.isnan(start):
        start = now_s
    later = start if math.isnan(signup) or start > signup else signup  # np.fmax
    observed_days = (now_s - later) / 86400.0
    tenure_days = (now_s - signup) / 86400.0
    year_failures = index.sums[rows["failure"], year_ago] if year_ago >= 0 else None
    nan = math.nan
    values = [
        tenure_days,
        observed_days,
        _lone_observed_share(observed_days, tenure_days),
        failures / _at_least(observed_days, 30.0) * 365.0,
        failures,
        failures
        - (float(year_failures) if year_failures is not None else index.empty[rows["failure"]]),
        (now_s - last_failure) / 86400.0 if last_failure >= 0 else nan,
        recoveries,
        recoveries / failures if failures > 0 else nan,
        by_retry / recoveries if recoveries > 0 else nan,
        float(last_retry > last_customer) if _at_least(last_retry, last_customer) >= 0 else nan,
        payments,
        pay_dom + (1.0 if payments > 0 else nan),
        pay_dom_r,
        pay_wd,
        pay_wd_r,
        at("activity"),
        act_hour,
        act_r,
        email_sent,
        at("email_click") / email_sent if email_sent > 0 else nan,
        sms_sent,
        at("sms_click") / sms_sent if sms_sent > 0 else nan,
        at("email_click") + at("sms_click"),
        *(at(name.removeprefix("cust_")) for name in HOUR_PROFILE_COLUMNS),
    ]
    block = np.array(values, dtype=np.float64).reshape(len(values), 1)
    return dict(zip(_LONE_NAMES, block, strict=True))


_PERIODS = CIRCLE_PERIODS.ravel().tolist()


def _lone_circular_means(sums: list[float]) -> tuple[list[float], list[float]]:
    """:func:`_circular_mean` of one decision's circles (``sums``: their counts, cosine
    sums, sine sums, :data:`CIRCLES` each): the angles by numpy's ``arctan2`` (one call:
    its SIMD path may round otherwise than ``math.atan2``), the rest on Python floats as
    numpy computes it (``np.mod``'s remainder is Python's; ``**2`` is ``x * x``)."""
    size = len(CIRCLES)
    counts, cos, sin = sums[:size], sums[size : 2 * size], sums[2 * size :]
    angles = np.arctan2(np.array(sin), np.array(cos)).tolist()
    turn = 2 * np.pi
    values, strengths = [], []
    for angle, c, s, n, period in zip(angles, cos, sin, counts, _PERIODS, strict=True):
        if n > 0:
            values.append(angle % turn / turn * period)
            strengths.append(math.sqrt(c * c + s * s) / n)
        else:
            values.append(math.nan)
            strengths.append(math.nan)
    return values, strengths


_LONE_NAMES = (*CUSTOMER_FEATURES, "cust_clicks", *HOUR_PROFILE_COLUMNS)
"""The columns of :func:`_lone_customer_columns`, in :func:`customer_columns`' order."""


def _at_least(value: float, floor: float) -> float:
    """``np.maximum(value, floor)`` of two floats: NaN when either is NaN."""
    if math.isnan(value) or math.isnan(floor):
        return math.nan
    return value if value >= floor else floor


def _lone_observed_share(observed_days: float, tenure_days: float) -> float:
    """:func:`_observed_share` of one decision: 1 at or before signup, else the share
    clipped to [0, 1] (NaN stays NaN)."""
    if tenure_days <= 0:
        return 1.0
    if math.isnan(tenure_days):
        return math.nan
    share = observed_days / tenure_days
    if math.isnan(share):
        return share
    return 0.0 if share < 0.0 else 1.0 if share > 1.0 else share

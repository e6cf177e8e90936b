"""A batch's model matrices and time columns (training/models/matrix.py): the rows'
events gathered at the model's width with the per-row columns written in place, the
calendar's offsets looked up per zone code, and the hour response left out for a model
that reads none give the figures of the plain definitions, to the bit."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from training.core.localtime import NAT
from training.features.calendar import calendar_arrays
from training.features.frames import (
    HOUR_RESPONSE_FEATURES,
    HOUR_RESPONSE_INPUTS,
    TIME_COLUMNS,
    TIME_FEATURES,
    time_columns,
)
from training.models.matrix import EventMatrix, Labels, reads_hour_response

ZONES = ["Europe/London", "America/New_York", "UTC", "Asia/Kathmandu", "Australia/Lord_Howe"]
START = np.datetime64("2026-03-01T00:00", "ns").astype(np.int64)  # DST changes within weeks
DAY = 86_400 * 10**9
TIME_INPUTS = (
    "cust_pay_day_of_month",
    "cust_pay_weekday",
    "cust_active_hour",
    *HOUR_RESPONSE_INPUTS,
)


def _matrix(rng: np.random.Generator, zones: list[object]) -> EventMatrix:
    n = len(zones)
    columns = {name: rng.uniform(-3.0, 25.0, n) for name in TIME_INPUTS}
    columns["timezone"] = np.array(zones, dtype=object)
    return EventMatrix.from_columns(np.arange(n).astype(str).astype(object), columns)


def _reference(matrix: EventMatrix, pos: np.ndarray, ns: np.ndarray) -> dict[str, np.ndarray]:
    """The time columns from each row's zone name (missing: UTC), row by row."""
    names = matrix.column("timezone")[pos]
    names = np.array(["UTC" if not isinstance(z, str) else z for z in names], dtype=object)
    column = {name: matrix.column(name).astype(float)[pos] for name in TIME_INPUTS}
    return time_columns(
        *calendar_arrays(ns, names),
        column["cust_pay_day_of_month"],
        column["cust_pay_weekday"],
        column["cust_active_hour"],
        {name: column[name] for name in HOUR_RESPONSE_INPUTS},
    )


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)


def test_time_columns_by_zone_code_equal_those_by_zone_name():
    """Many zones, missing zones and NaT instants, across DST changes; a batch's grid
    (thousands of rows: one computation per distinct instant) and a few rows."""
    rng = np.random.default_rng(11)
    zones: list[object] = [ZONES[i % len(ZONES)] for i in range(57)]
    zones[::7] = [None] * len(zones[::7])
    matrix = _matrix(rng, zones)
    for rows in (5000, 40):
        pos = rng.integers(0, len(zones), rows)
        ns = START + rng.integers(0, 40, rows) * (DAY // 8) + rng.integers(0, 3, rows) * 60 * 10**9
        ns[::97] = NAT
        _assert_same(matrix.time_columns(pos, ns), _reference(matrix, pos, ns))


def test_the_hour_response_is_left_out_only_for_a_model_that_reads_none():
    rng = np.random.default_rng(12)
    matrix = _matrix(rng, [ZONES[i % len(ZONES)] for i in range(30)])
    pos = rng.integers(0, 30, 3000)
    ns = START + rng.integers(0, 20 * 24, len(pos)) * 3_600 * 10**9
    every = matrix.time_columns(pos, ns)
    assert list(every) == list(TIME_COLUMNS)

    def model(name: str, features: list[str], rates: tuple = ()) -> SimpleNamespace:
        return SimpleNamespace(name=name, features=features, categories={}, rates=rates)

    retry = model("retry", ["amount", *TIME_FEATURES])
    reads = model("message", ["amount", *TIME_FEATURES, "hour_sends"])
    spec = SimpleNamespace(left="template", right="active_hour_closeness")
    by_rate = model("rated", ["amount", *TIME_FEATURES], (SimpleNamespace(spec=spec),))
    assert not reads_hour_response(retry)
    assert reads_hour_response(reads) and reads_hour_response(by_rate)
    without = matrix.time_columns(pos, ns, retry)
    assert set(without) == set(TIME_FEATURES) and not set(without) & set(HOUR_RESPONSE_FEATURES)
    _assert_same(without, {name: every[name] for name in without})
    _assert_same(matrix.time_columns(pos, ns, reads), every)
    _assert_same(matrix.time_columns(pos, ns, by_rate), every)


def test_a_batch_matrix_equals_its_columns_placed_one_by_one():
    """Event and per-row columns interleaved in the model's order, a category column,
    labels, a column given as ints, one missing (NaN), several events or one."""
    rng = np.random.default_rng(13)
    n_events, n = 25, 3000
    events = {
        "a": rng.random(n_events),
        "cat": np.array(["x", "y", None], dtype=object)[rng.integers(0, 3, n_events)],
        "b": rng.integers(0, 5, n_events),
    }
    features = ["x", "a", "tpl", "cat", "count", "b", "gone", "y"]
    model = SimpleNamespace(
        name="m",
        features=features,
        categories={"cat": ["x", "y"], "tpl": ["ask", "remind"]},
        rates=(),
    )
    templates = np.array(["ask", "remind", "other"], dtype=object)
    codes = rng.integers(0, 3, n)
    rows = {
        "x": rng.random(n),
        "y": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
        "count": rng.integers(0, 4, n),
        "tpl": Labels(codes, templates),
    }
    for ids in (np.arange(n_events), np.arange(1)):
        matrix = EventMatrix.from_columns(ids, {k: v[: len(ids)] for k, v in events.items()})
        pos = rng.integers(0, len(ids), n)
        got = matrix.model_matrix(model, pos, rows)
        cat = np.array([{"x": 0.0, "y": 1.0}.get(c, np.nan) for c in events["cat"][: len(ids)]])
        tpl = np.array([0.0, 1.0, np.nan])[codes]
        want = np.column_stack(
            [
                rows["x"],
                events["a"][: len(ids)][pos],
                tpl,
                cat[pos],
                rows["count"].astype(float),
                events["b"][: len(ids)][pos].astype(float),
                np.full(n, np.nan),
                rows["y"],
            ]
        )
        np.testing.assert_array_equal(got, want)
        assert got.flags.c_contiguous and got.dtype == np.float64


def test_moved_rows_leave_the_hour_response_out_as_the_matrix_does():
    from training.policy.moved_rows import moved_time_columns

    rng = np.random.default_rng(14)
    matrix = _matrix(rng, [ZONES[i % len(ZONES)] for i in range(20)])
    pos = rng.integers(0, 20, 300)
    ns = START + rng.integers(0, 30 * 24, len(pos)) * 3_600 * 10**9
    shifts = np.array([-2, 1, 3], dtype=np.int64) * DAY
    every = moved_time_columns(matrix, pos, ns, shifts)
    without = moved_time_columns(matrix, pos, ns, shifts, hour_response=False)
    assert list(without) == list(TIME_FEATURES)
    _assert_same(without, {name: every[name] for name in TIME_FEATURES})

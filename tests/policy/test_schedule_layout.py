"""A lone request's whole-schedule layout and survival sums (Python lists) against the
general path (numpy), to the bit and to the dtype."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.core.columnar import ColumnTable, utc_array
from training.features.invoice import events_from_history
from training.policy.decider import ScheduleScores
from training.policy.schedule_layout import general_layout, lone_layout
from training.policy.scorer import past_rows

START = pd.Timestamp("2025-03-01", tz="UTC").value
HOUR = 3600 * 10**9


def _past(rng: np.random.Generator, event: str, other: str | None) -> ColumnTable:
    rows = int(rng.integers(1, 5))
    ids = [event] * rows + ([other] if other else [])
    kinds = ["original"] + ["retry"] * (len(ids) - 1)
    ns = START + np.sort(rng.integers(-200, 0, len(ids))).astype(np.int64) * HOUR
    return ColumnTable.of(
        {
            "event_id": np.array(ids, dtype=object),
            "t": utc_array(ns),
            "kind": np.array(kinds, dtype=object),
        }
    )


def _times(rng: np.random.Generator, rows: int) -> np.ndarray:
    return START + rng.integers(0, 400, rows).astype(np.int64) * HOUR + rng.integers(0, 60, rows)


def _messages(rng: np.random.Generator, event: str, rows: int) -> dict[str, np.ndarray]:
    names = ["remind", "update_card", None, math.nan, ""]
    if rng.random() < 0.3:  # a string column (numpy's own dtype): str items either way
        template = np.array([str(t) for t in rng.choice(["remind", "update_card"], rows)])
    else:
        template = np.array([names[i] for i in rng.integers(0, len(names), rows)], dtype=object)
    return {
        "event_id": np.array([event] * rows, dtype=object),
        "ns": _times(rng, rows),
        "template": template,
        "channel": np.array(rng.choice(["email", "sms"], rows), dtype=object),
    }


def _case(rng: np.random.Generator, stranger: bool = False):
    event = "evt-1"
    past = _past(rng, event, "evt-2" if stranger and rng.random() < 0.5 else None)
    count = int(rng.integers(1, 7))
    retries = []
    for _ in range(count):
        rows = int(rng.integers(0, 5))
        retries.append(
            {"event_id": np.array([event] * rows, dtype=object), "ns": _times(rng, rows)}
        )
    shared = _messages(rng, event, int(rng.integers(0, 6)))  # the pruning's one frame
    messages = []
    for _ in range(count):
        if rng.random() < 0.6:
            keep = rng.random(len(shared["ns"])) < 0.6 if rng.random() < 0.8 else None
            messages.append((shared, keep))
        else:
            messages.append((_messages(rng, event, int(rng.integers(0, 4))), None))
    if stranger and not past.frame()["event_id"].nunique() > 1:
        part = retries[int(rng.integers(0, count))]
        if len(part["ns"]):
            part["event_id"] = part["event_id"].copy()
            part["event_id"][-1] = "evt-2"
        else:
            part["event_id"], part["ns"] = np.array(["evt-2"], dtype=object), _times(rng, 1)
    return np.array([event], dtype=object), past, retries, messages


def _same_items(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    for a, b in zip(got.tolist(), want.tolist(), strict=True):
        assert type(a) is type(b)
        assert a is b or a == b or (a != a and b != b)  # (NaN: the same)


def test_lone_layout_equals_the_general_layout():
    rng = np.random.default_rng(7)
    met = {"keep": 0, "unkept": 0, "no retry": 0, "str column": 0}
    for _ in range(400):
        ids, past, retries, messages = _case(rng)
        got = lone_layout(ids, past, retries, messages)
        want = general_layout(ids, past, retries, messages)
        assert got is not None
        for name in ("key", "ns", "kind", "template", "channel", "candidate", "event"):
            _same_items(getattr(got, name), getattr(want, name))
        assert got.n_past == want.n_past and got.sizes == want.sizes
        met["keep"] += any(keep is not None for _, keep in messages)
        met["unkept"] += any(keep is None for _, keep in messages)
        met["no retry"] += any(len(r["ns"]) == 0 for r in retries)
        met["str column"] += any(m["template"].dtype.kind == "U" for m, _ in messages)
    assert min(met.values()) >= 10, met


def test_another_events_rows_leave_it_to_the_general_layout():
    rng = np.random.default_rng(8)
    for _ in range(100):
        ids, past, retries, messages = _case(rng, stranger=True)
        assert lone_layout(ids, past, retries, messages) is None
    ids, past, _, _ = _case(rng)
    assert lone_layout(ids, past, [], []) is None  # no schedule
    two = np.array(["evt-1", "evt-2"], dtype=object)
    assert lone_layout(two, past, *_case(rng)[2:]) is None


@pytest.fixture(scope="module")
def lone_case(small_world):
    decider = small_world.artifact.decider()
    events = events_from_history(small_world.history).tail(40).reset_index(drop=True)
    events["max_messages"] = 3
    events.loc[::2, "sms_opt_in"] = True
    return decider, events


def test_lone_scoring_equals_the_general_scoring(lone_case, monkeypatch):
    """A lone request's whole schedules (the pruning's, with ``keep`` rows), scored with
    the lone layout and sums and with the general ones: every figure to the bit."""
    import training.policy.decider as decider_module

    decider, events = lone_case
    laid_out: list[bool] = []
    real = decider_module.lone_layout

    def lone_layout(*args):
        layout = real(*args)
        laid_out.append(layout is not None)
        return layout

    monkeypatch.setattr(decider_module, "lone_layout", lone_layout)
    checked = 0
    for row in range(0, len(events), 4):
        lone = events.iloc[[row]].reset_index(drop=True)
        past = past_rows(lone, None)
        decided = decider.rules.decide_many(lone, None)
        memo = ScheduleScores(decider, lone, None, past)
        plan = decider.plan(lone, None, past=past, decisions=decided, memo=memo)
        messages = plan.messages
        keeps = [np.ones(len(messages), bool), np.arange(len(messages)) % 2 == 0]
        schedules = [(plan.retries, messages), *((plan.retries, messages, k) for k in keeps)]
        fast = decider.score_laid_out(lone, plan.features, past, schedules, memo.p_self)
        with monkeypatch.context() as patch:
            patch.setattr(decider_module, "lone_layout", lambda *args: None)
            slow = decider.score_laid_out(lone, plan.features, past, schedules, memo.p_self)
        for got, want in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(got.expected, want.expected, strict=True)
            np.testing.assert_array_equal(got.p, want.p, strict=True)
            assert got.expected.tobytes() == want.expected.tobytes()
            assert got.p.tobytes() == want.p.tobytes()
            assert (got.rows.retries, got.rows.messages) == (want.rows.retries, want.rows.messages)
            for a, b in zip(got.rows.rows, want.rows.rows, strict=True):
                _same_items(a, b)
            assert got.rows.state.keys() == want.rows.state.keys()
            for name, values in got.rows.state.items():
                assert values.tobytes() == want.rows.state[name].tobytes()
        checked += len(messages) > 0 and len(plan.retries) > 0
    assert checked >= 3 and all(laid_out)  # (the fast scorings took the lone layout)

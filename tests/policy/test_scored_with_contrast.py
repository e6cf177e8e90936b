"""The rows and contrasts of a whole schedule's scoring (``scored_with_contrast``): the
path for rows laid out retries first (Python lists and floats) against the general
path (numpy), to the bit and to the dtype, and the rows each asks the models for."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from training.features.invoice import events_from_history
from training.policy import calendar
from training.policy.calendar import DAY_NS, kind_shifts, scored_with_contrast
from training.policy.decider import ModelDecider

START = np.datetime64("2025-03-01T00:00", "ns").astype(np.int64)
HOUR = 3600 * 10**9
STATE = ("hours_since_failure", "retries_before", "same_template_before")


class _Scorer:
    """A stand-in for the models: each row's probability a fixed function of its whole
    input (time, kind, template, channel, state; some at 0 and 1, where ``logit``
    clips), every call's arguments kept."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def row_probabilities(self, features, event_ids, ns, kind, template, channel, state):
        self.calls.append((event_ids, ns, kind, template, channel, state))
        mix = (ns % 1_000_003).astype(float) / 1_000_003.0
        mix = mix + (kind == "message") * 0.37 + (channel == "sms") * 0.11
        mix = mix + np.array([len(str(t)) for t in template]) * 0.013
        for k, values in enumerate(state.values()):
            mix = mix + np.sin(values * (k + 1.3))
        p = (np.sin(mix * 7.1) + 1.0) / 2.0
        p[(ns % 13) == 0] = 0.0
        p[(ns % 17) == 0] = 1.0
        return p


def _moves(rng: np.random.Generator) -> dict[str, np.ndarray]:
    moves = {}
    for name in ("retry", "message"):
        if rng.random() < 0.2:
            continue  # a kind without moves (no contrast)
        days = rng.choice([1, 2, 3, 5, 7], int(rng.integers(0, 4)), replace=False)
        hours = rng.choice([1.0, 2.5, 4.0, 6.0], int(rng.integers(0, 3)), replace=False)
        ns = [*(int(d) * DAY_NS for d in days), *(int(h * HOUR) for h in hours)]
        ns = [*(-s for s in reversed(ns)), *ns]
        moves[name] = np.array(ns, dtype=np.int64)
    return moves


def _case(rng: np.random.Generator, order: str = "laid out") -> tuple[Any, ...]:
    n = int(rng.integers(1, 40))
    r = int(rng.integers(0, n + 1))
    kind = np.array(["retry"] * r + ["message"] * (n - r), dtype=object)
    if order == "shuffled":
        kind = kind[rng.permutation(n)]
    elif order == "other kind":
        kind[int(rng.integers(0, n))] = "original"
    ns = START + rng.integers(0, 400 * 60, n).astype(np.int64) * 60 * 10**9
    ns += rng.integers(0, 60, n)
    event_ids = np.array(rng.choice(["evt-1", "evt-2"], n) if rng.random() < 0.2 else ["evt-1"] * n)
    templates = np.array(["remind", "update_card", None, ""], dtype=object)
    template = np.where(kind == "message", templates[rng.integers(0, 4, n)], None)
    channel = np.where(kind == "message", rng.choice(["email", "sms"], n), None).astype(object)
    state = {name: rng.integers(0, 5, n).astype(float) * rng.uniform(0.5, 30.0) for name in STATE}
    return event_ids, ns, kind, template, channel, state, _moves(rng)


def _assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]):
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes()


def _assert_same_calls(got: _Scorer, want: _Scorer) -> None:
    assert len(got.calls) == len(want.calls) == 1
    for g, w in zip(got.calls[0], want.calls[0], strict=True):
        if isinstance(w, dict):
            assert list(g) == list(w)
            g, w = list(g.values()), list(w.values())
        else:
            g, w = [g], [w]
        for a, b in zip(g, w, strict=True):
            np.testing.assert_array_equal(a, b, strict=True)


def test_laid_out_rows_score_as_the_general_path_to_the_bit():
    rng = np.random.default_rng(24)
    met: Counter[str] = Counter()
    for _ in range(500):
        event_ids, ns, kind, template, channel, state, moves = _case(rng)
        args = (event_ids, ns, kind, template, channel, state, moves)
        lone, general = _Scorer(), _Scorer()
        got = calendar._contiguous_scored(lone, None, *args)
        assert got is not None
        _assert_same(got, calendar._general_scored(general, None, *args))
        _assert_same_calls(lone, general)
        _assert_same(scored_with_contrast(_Scorer(), None, *args), got)
        r = int((kind == "retry").sum())
        for name, rows in (("retry", r), ("message", len(kind) - r)):
            shift = moves.get(name, np.zeros(0, dtype=np.int64))
            days = int((shift % DAY_NS == 0).sum())
            if rows:
                met[f"{name}: {'days' if days else 'no days'}"] += 1
                met[f"{name}: {'hours' if len(shift) - days else 'no hours'}"] += 1
        met["only retries" if r == len(kind) else "only messages" if r == 0 else "both"] += 1
        met["contrast" if got[1].any() else "no contrast"] += 1
    assert len(met) == 13 and min(met.values()) >= 10, met


@pytest.mark.parametrize("order", ["shuffled", "other kind"])
def test_rows_in_another_order_are_left_to_the_general_path(order):
    rng = np.random.default_rng(25)
    left = 0
    for _ in range(200):
        args = _case(rng, order)
        got = calendar._contiguous_scored(_Scorer(), None, *args)
        if got is None:
            left += 1
        else:  # (a shuffle that kept the retries first)
            _assert_same(got, calendar._general_scored(_Scorer(), None, *args))
        want = calendar._general_scored(_Scorer(), None, *args)
        _assert_same(scored_with_contrast(_Scorer(), None, *args), want)
    assert left >= 100


def test_instants_moved_past_int64_are_left_to_the_general_path():
    rng = np.random.default_rng(26)
    event_ids, ns, kind, template, channel, state, _ = _case(rng)
    ns[-1] = np.iinfo(np.int64).min  # NaT: moved back, it wraps in numpy
    moves = {"retry": np.array([-HOUR, HOUR]), "message": np.array([-HOUR, HOUR])}
    args = (event_ids, ns, kind, template, channel, state, moves)
    assert calendar._contiguous_scored(_Scorer(), None, *args) is None
    np.testing.assert_array_equal(
        scored_with_contrast(_Scorer(), None, *args)[0],
        calendar._general_scored(_Scorer(), None, *args)[0],
    )
    as_times = (*args[:1], ns.astype("M8[ns]"), *args[2:])
    assert calendar._contiguous_scored(_Scorer(), None, *as_times) is None


def test_a_lone_requests_scoring_goes_through_the_laid_out_path(small_world, monkeypatch):
    """The whole-schedule scoring of a lone request takes the laid-out path, and its
    figures are those of the general path (a real model; moves of both kinds given
    where the small world's model has none)."""
    decider: ModelDecider = small_world.artifact.decider(compiled=False)
    moves = decider._contrast_moves() or kind_shifts((1, 2), (4.0,), (3.0,))
    monkeypatch.setattr(decider, "_contrast_moves", lambda: moves)
    events = events_from_history(small_world.history).tail(3).reset_index(drop=True)
    taken = []
    contiguous = calendar._contiguous_scored

    def spy(*args: Any) -> Any:
        out = contiguous(*args)
        taken.append(out is not None)
        if out is not None:
            _assert_same(out, calendar._general_scored(*args))
        return out

    monkeypatch.setattr(calendar, "_contiguous_scored", spy)
    for k in range(len(events)):
        one = events.iloc[[k]].reset_index(drop=True)
        decider.decide(one, None)
    assert taken and all(taken)

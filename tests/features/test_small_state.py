"""The plain-Python dunning state of a few rows (a lone decision's whole schedules)
equals the numpy one to the bit, on random small timelines: keys in any order, ties in
time and kind, several templates (missing, empty, update requests), candidates anywhere."""

from __future__ import annotations

import numpy as np
import pytest

from training.config.retry_limits import RetryLimits
from training.features import dunning_state
from training.features.dunning_state import (
    SMALL_STATE_ROWS,
    STATE_FEATURES,
    _small_state,
    _state_of_rows,
    state_of_rows,
)

UPDATE = RetryLimits().update_requests
HOUR_NS = 3_600_000_000_000


def _random_rows(seed: int, n: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 7))
    key = rng.integers(0, groups, n) * (10**12 if seed % 3 == 2 else 1) - (seed % 3 == 1)
    ns = 1_754_473_874_000_000_000 + rng.integers(0, 8, n) * 12 * HOUR_NS + rng.integers(0, 2, n)
    kind = rng.choice(np.array(["original", "retry", "message"], dtype=object), n)
    names = np.array([UPDATE.templates[0], "friendly_reminder", "", None, np.nan], dtype=object)
    template = np.where(kind == "message", rng.choice(names, n), None)
    candidate = rng.random(n) < 0.6
    return key.astype(np.uint32 if seed % 5 == 4 else np.int64), ns, kind, template, candidate


def assert_same_bits(got: tuple, want: tuple) -> None:
    (got_rows, got_state), (want_rows, want_state) = got, want
    assert got_rows.dtype == want_rows.dtype and np.array_equal(got_rows, want_rows)
    assert list(got_state) == list(STATE_FEATURES) == list(want_state)
    for name in STATE_FEATURES:
        a, b = got_state[name], want_state[name]
        assert a.dtype == b.dtype == np.float64 and a.shape == b.shape, name
        assert np.array_equal(a.view(np.int64), b.view(np.int64)), name  # NaNs too


@pytest.mark.parametrize("seed", range(40))
def test_small_state_equals_the_numpy_state_to_the_bit(seed: int) -> None:
    rows = _random_rows(seed, n=int(np.random.default_rng(seed).integers(1, 60)))
    small = _small_state(*rows, UPDATE)
    assert small is not None
    assert_same_bits(small, _state_of_rows(*rows, UPDATE))
    assert_same_bits(state_of_rows(*rows, UPDATE), small)


def test_small_state_of_other_update_templates_and_delay() -> None:
    update = RetryLimits(
        update_message_templates=("friendly_reminder",), update_plausible_after_hours=30.0
    ).update_requests
    for seed in range(10):
        rows = _random_rows(seed, n=40)
        small = _small_state(*rows, update)
        assert small is not None
        assert_same_bits(small, _state_of_rows(*rows, update))


def test_no_rows_and_no_candidates() -> None:
    rows = _random_rows(3, n=20)
    none = (*rows[:4], np.zeros(20, dtype=bool))
    assert_same_bits(_small_state(*none, UPDATE), _state_of_rows(*none, UPDATE))
    empty = tuple(r[:0] for r in rows)
    assert_same_bits(_small_state(*empty, UPDATE), _state_of_rows(*empty, UPDATE))


@pytest.mark.parametrize(
    "change",
    ["kind", "template", "empty_update_template"],
)
def test_what_the_small_state_leaves_to_the_numpy_one(change: str) -> None:
    """A kind that is not one of the three, a message's template that is neither a
    string nor missing, or "" asked for as an update request: the general path."""
    key, ns, kind, template, candidate = _random_rows(7, n=30)
    kind, template, update = kind.copy(), template.copy(), UPDATE
    message = np.flatnonzero(kind == "message")[0]
    if change == "kind":
        kind[message] = "charge"
    elif change == "template":
        template[message] = 3
    else:
        update = RetryLimits(update_message_templates=("",)).update_requests
    rows = (key, ns, kind, template, candidate)
    assert _small_state(*rows, update) is None
    assert_same_bits(state_of_rows(*rows, update), _state_of_rows(*rows, update))


def test_only_a_few_integer_keyed_rows_take_the_small_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def small(*args: object) -> None:
        calls.append(len(args[0]))
        return None

    monkeypatch.setattr(dunning_state, "_small_state", small)
    for n in (SMALL_STATE_ROWS, SMALL_STATE_ROWS + 1):
        state_of_rows(*_random_rows(1, n), UPDATE)
    key, *rest = _random_rows(2, 10)
    state_of_rows(key.astype(str).astype(object), *rest, UPDATE)
    assert calls == [SMALL_STATE_ROWS]

"""A lone request's exploration on Python values (``exploration._explore_one``) equals
the general array path's, field by field and to the bit: random windows and searched
retries (dense, sparse, at the edges), every arm drawn (shifts, the first retry's day,
the searched schedule), configurations with repeated shifts, no day arm, no exploration."""

from __future__ import annotations

import numpy as np
import pytest

from training.config.policy import PolicyConfig
from training.core.localtime import DAY_NS, HOUR_NS
from training.policy import exploration
from training.policy.exploration import DAY_MOVED, SEARCHED, SHIFTED, explore
from training.policy.schedule_rows import RetryRows

CONFIGS = [
    PolicyConfig(exploration_rate=0.2, exploration_first_retry_day_rate=0.3),
    PolicyConfig(exploration_rate=0.05, exploration_first_retry_day_rate=0.05),
    PolicyConfig(exploration_rate=0.1, exploration_first_retry_day_rate=0.0),
    PolicyConfig(exploration_rate=0.3, exploration_shifts_hours=(6, 6, -6)),
    PolicyConfig(exploration_rate=0.0, exploration_first_retry_day_rate=0.4),
    PolicyConfig(exploration_rate=0.6, exploration_first_retry_day_rate=0.4),
]
T0 = 1_760_000_000 * 1_000_000_000  # 2025-10-09, in ns


def _event(rng: np.random.Generator, event_id: str) -> tuple[RetryRows, int, int]:
    """Searched retries of one event inside [start, end), spaced or not, on the hour or
    at odd minutes, and the window."""
    start = T0 + int(rng.integers(0, 72)) * HOUR_NS + int(rng.integers(0, 60)) * 60 * 10**9
    end = start + int(rng.integers(1, 15)) * DAY_NS - int(rng.integers(0, 24)) * HOUR_NS
    count = int(rng.integers(1, 6))
    at = np.sort(rng.integers(start, end, size=count))
    if rng.random() < 0.5:  # on whole hours from the start, as the search's grid
        at = start + (at - start) // HOUR_NS * HOUR_NS
    return RetryRows(np.full(count, event_id, dtype=object), at.astype(np.int64)), start, end


def _same(a: exploration.Explored, b: exploration.Explored) -> None:
    assert a.retries.event_id.tolist() == b.retries.event_id.tolist()
    assert a.retries.at.dtype == b.retries.at.dtype
    assert a.retries.at.tolist() == b.retries.at.tolist()
    for name in ("propensity", "kind", "shift_hours", "moved_days", "retry_propensity"):
        got, want = getattr(a, name), getattr(b, name)
        assert got.dtype == want.dtype, name
        assert got.tobytes() == want.tobytes(), name  # to the bit


@pytest.mark.parametrize("config", CONFIGS)
def test_lone_exploration_equals_the_general_path(config, monkeypatch):
    rng = np.random.default_rng(int(config.exploration_rate * 100))
    cases = []
    for k in range(400):
        retries, start, end = _event(rng, f"e{k}")
        draw = np.array([rng.random()])
        spacing = float(rng.choice([0.0, 4.0, 24.0]))
        bounds = np.array([start]), np.array([end])
        lone = explore(np.array([f"e{k}"], dtype=object), retries, *bounds, spacing, config, draw)
        cases.append((k, retries, bounds, spacing, draw, lone))
    other, o_start, o_end = _event(rng, "zz")
    kinds = set()
    for k, retries, (start, end), spacing, draw, lone in cases:
        both = explore(
            np.array([f"e{k}", "zz"], dtype=object),
            RetryRows(
                np.concatenate([retries.event_id, other.event_id]),
                np.concatenate([retries.at, other.at]),
            ),
            np.array([start[0], o_start]),
            np.array([end[0], o_end]),
            spacing,
            config,
            np.array([draw[0], 0.99]),
        )
        ours = both.retries.event_id == f"e{k}"
        mine = exploration.Explored(
            RetryRows(both.retries.event_id[ours], both.retries.at[ours]),
            both.propensity[:1],
            both.kind[:1],
            both.shift_hours[:1],
            both.moved_days[:1],
            both.retry_propensity[ours],
        )
        _same(lone, mine)
        kinds.add(int(lone.kind[0]))
        if lone.kind[0] == SEARCHED:
            assert lone.retries is retries  # the same rows: the pruning's memo keeps them
    monkeypatch.setattr(exploration, "_explore_one", lambda *args: None)
    for k, retries, bounds, spacing, draw, lone in cases:
        ids = np.array([f"e{k}"], dtype=object)
        _same(lone, explore(ids, retries, *bounds, spacing, config, draw))
    met = {SEARCHED}
    met |= {SHIFTED} if config.exploration_rate > 0 else set()
    met |= {DAY_MOVED} if exploration.day_mass(config) > 0 else set()
    assert kinds == met


def test_retries_of_another_event_or_none_are_left_to_the_general_path():
    config = CONFIGS[0]
    retries, start, end = _event(np.random.default_rng(1), "a")
    assert exploration._explore_one("b", retries, start, end, 24.0, config) is None
    assert exploration._explore_one("a", RetryRows.empty(), start, end, 24.0, config) is None
    assert exploration._explore_one("a", retries, start, 2**62, 24.0, config) is None
    assert exploration._explore_one("a", retries, start, end, 24.0, config) is not None

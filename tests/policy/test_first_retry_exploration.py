"""Exploring the first retry's day (``policy.exploration_first_retry_day_rate``): exact
propensities, no rule broken, spread over the allowed days, the searched path unchanged."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from training.config.policy import PolicyConfig
from training.core.localtime import DAY_NS, HOUR_NS
from training.declines.violations import schedule_violations
from training.features.invoice import events_from_history
from training.policy.decider import search_schedules
from training.policy.exploration import DAY_MOVED, SEARCHED, SHIFTED, explore
from training.policy.retry_search import retry_windows
from training.policy.schedule_rows import RetryRows
from training.policy.scorer import past_rows

H = HOUR_NS
SPACING = 24.0
# (start h, window days, retries h): late, early, none, near the edges, dense
CASES = [
    (24, 8, [30, 80, 130]),
    (24, 8, []),
    (24, 3, [24]),
    (40, 2, [40]),
    (24, 8, [150, 175]),
    (72, 7, [72, 96, 120, 144]),
    (24, 8, [100]),
    (30, 6, [31, 60]),
]


def _case() -> tuple[np.ndarray, RetryRows, np.ndarray, np.ndarray]:
    ids = np.array([f"e{i}" for i in range(len(CASES))], dtype=object)
    start = np.array([c[0] * H for c in CASES], dtype=np.int64)
    end = np.array([c[1] * DAY_NS for c in CASES], dtype=np.int64)
    owner = np.concatenate([np.full(len(c[2]), ids[i], dtype=object) for i, c in enumerate(CASES)])
    at = np.concatenate([np.array(c[2], dtype=np.int64) * H for c in CASES])
    return ids, RetryRows(owner, at), start, end


def _schedules(ids: np.ndarray, rows: RetryRows) -> dict[str, tuple[int, ...]]:
    out: dict[str, list[int]] = {i: [] for i in ids}
    for event, at in zip(rows.event_id, rows.at, strict=True):
        out[event].append(int(at))
    return {event: tuple(times) for event, times in out.items()}


CONFIGS = [
    PolicyConfig(exploration_rate=0.2, exploration_first_retry_day_rate=0.3),
    PolicyConfig(exploration_rate=0.05, exploration_first_retry_day_rate=0.05),
    PolicyConfig(exploration_rate=0.1, exploration_first_retry_day_rate=0.0),
    PolicyConfig(exploration_rate=0.1, exploration_shifts_hours=(6, 6, -6)),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_propensities_are_the_exact_probability_of_each_schedule(config):
    """Every draw enumerated in cells of equal mass (840 per arm region: each day's share
    is whole for up to 8 days): per event, the propensity returned with a schedule is the
    mass of the cells that return it, and those masses sum to one."""
    ids, retries, start, end = _case()
    rate, day = config.exploration_rate, config.exploration_first_retry_day_rate
    grid = (np.arange(840) + 0.5) / 840
    draws = [(u, rate / 840) for u in rate * grid]
    draws += [(u, day / 840) for u in rate + day * grid] if day else []
    draws.append((rate + day + (1 - rate - day) / 2, 1 - rate - day))
    mass: dict[str, dict[tuple[int, ...], float]] = defaultdict(lambda: defaultdict(float))
    said: dict[tuple[str, tuple[int, ...]], set[float]] = defaultdict(set)
    for u, weight in draws:
        got = explore(ids, retries, start, end, SPACING, config, np.full(len(ids), u))
        for i, (event, schedule) in enumerate(_schedules(ids, got.retries).items()):
            mass[event][schedule] += weight
            said[event, schedule].add(round(float(got.propensity[i]), 9))
    for event, by_schedule in mass.items():
        assert sum(by_schedule.values()) == pytest.approx(1.0)
        for schedule, m in by_schedule.items():
            assert said[event, schedule] == {round(m, 9)}, (event, schedule)
    assert mass["e1"] == {(): pytest.approx(1.0)}  # no retry: nothing to explore
    if day and config.exploration_shifts_hours == (-12, -6, 6, 12):
        assert len(mass["e0"]) == 1 + 3 + 6  # searched, three shifts inside, six other days


def test_explored_schedules_keep_the_window_the_spacing_and_the_count():
    ids, retries, start, end = _case()
    config = PolicyConfig(exploration_rate=0.3, exploration_first_retry_day_rate=0.7)
    before = _schedules(ids, retries)
    for u in np.linspace(0, 1, 400, endpoint=False):
        got = explore(ids, retries, start, end, SPACING, config, np.full(len(ids), u))
        for i, (event, times) in enumerate(_schedules(ids, got.retries).items()):
            t = np.array(times)
            assert len(t) <= len(before[event])
            assert ((t >= start[i]) & (t < end[i])).all()
            assert (np.diff(t) >= SPACING * H).all()
            if got.kind[i] == DAY_MOVED:
                assert (t[0] - before[event][0]) % DAY_NS == 0  # the clock time kept


def test_explored_first_retries_spread_over_the_allowed_days():
    """One event, 14-day window, searched first retry on day 2: the day arm draws each
    of the 12 other days about equally, never the searched one."""
    ids = np.array(["a"], dtype=object)
    retries = RetryRows(ids[[0, 0]], np.array([50, 100], dtype=np.int64) * H)
    start, end = np.array([24 * H]), np.array([14 * DAY_NS])
    config = PolicyConfig(exploration_rate=0.05, exploration_first_retry_day_rate=0.05)
    rng = np.random.default_rng(3)
    days = []
    for u in rng.uniform(0.05, 0.1, 2400):
        got = explore(ids, retries, start, end, SPACING, config, np.array([u]))
        assert got.kind[0] == DAY_MOVED and got.propensity[0] == pytest.approx(0.05 / 12)
        days.append(int(got.retries.at[0] // DAY_NS))
    counts = pd.Series(days).value_counts()
    assert set(counts.index) == set(range(1, 14)) - {2}
    assert counts.min() > 200 * 0.7 and counts.max() < 200 * 1.3


def test_whole_day_shifts_and_rates_above_one_are_refused():
    with pytest.raises(ValueError, match="whole days"):
        PolicyConfig(exploration_shifts_hours=(-24, 6))
    with pytest.raises(ValueError, match="at most 1"):
        PolicyConfig(exploration_rate=0.6, exploration_first_retry_day_rate=0.5)
    PolicyConfig(exploration_shifts_hours=(-24, 6), exploration_first_retry_day_rate=0.0)


@pytest.fixture(scope="module")
def requests(small_world):
    decider = small_world.artifact.decider()
    events = events_from_history(small_world.history).tail(120).reset_index(drop=True)
    previous = pd.DataFrame(
        {
            "event_id": events["event_id"].iloc[:20].to_numpy(),
            "attempted_at": events["failed_at"].iloc[:20].to_numpy() - pd.Timedelta(days=2),
        }
    )
    decisions = decider.rules.decide_many(events, previous).reset_index(drop=True)
    features = decider.scorer.event_features(events, previous)
    past = past_rows(events, previous)
    searched = search_schedules(
        decider.scorer, events, features, past, decisions, decider.templates, decider.config,
        decider.rules,
    )  # fmt: skip
    limits = decider.rules.limits
    _, start, end = retry_windows(
        events, decisions, searched.messages, limits.update_requests, limits.min_spacing_hours
    )
    return decider, events, previous, past, searched, start, end


def test_no_explored_schedule_breaks_a_rule(requests):
    """Simulated requests (some with earlier attempts), 40 draws each over every arm and
    40 in the day arm: the rules engine's checker finds no violation."""
    decider, events, previous, past, searched, start, end = requests
    explorer = decider.__class__(
        decider.scorer, decider.rules,
        decider.config.model_copy(
            update={"exploration_rate": 0.3, "exploration_first_retry_day_rate": 0.7}
        ),
        decider.templates, decider.model_version,
    )  # fmt: skip
    messages = searched.messages.frame()
    base = schedule_violations(decider.rules, events, searched.retries.frame(), previous, messages)
    assert base.empty
    rng = np.random.default_rng(11)
    moved = 0
    for draw in [*rng.random((40, len(events))), *rng.uniform(0.3, 1.0, (40, len(events)))]:
        got = explorer._explore(events, searched.retries, start, end, draw)
        found = schedule_violations(decider.rules, events, got.retries.frame(), previous, messages)
        assert found.empty, found.head()
        moved += int((got.kind == DAY_MOVED).sum())
    assert moved > 40 * len(events) * 0.3  # the day arm did move most first retries


def test_the_searched_path_is_unchanged(requests):
    """A draw in the searched cell returns the searched rows themselves; exploration off
    (``exploration_rate`` 0, the golden tests' setting) plans them with propensity 1."""
    decider, events, previous, past, searched, start, end = requests
    draw = np.full(len(events), 0.999)
    config = decider.config.model_copy(update={"exploration_rate": 0.05})
    explorer = decider.__class__(
        decider.scorer, decider.rules, config, decider.templates, decider.model_version
    )
    got = explorer._explore(events, searched.retries, start, end, draw)
    assert got.retries is searched.retries and (got.kind == SEARCHED).all()
    assert (got.propensity >= 0.9).all()
    assert decider.config.exploration_rate == 0.0
    plan = decider.plan(events, previous)
    assert plan.explored is None and (plan.propensity == 1.0).all()
    greedy = explorer.plan(events, previous, explore=False)
    np.testing.assert_array_equal(plan.retries.at, greedy.retries.at)
    np.testing.assert_array_equal(plan.retries.event_id, greedy.retries.event_id)


def test_explored_decisions_say_why_and_log_their_propensity(requests):
    decider, events, previous, *_ = requests
    config = decider.config.model_copy(
        update={"exploration_rate": 1e-9, "exploration_first_retry_day_rate": 1 - 1e-9}
    )
    explorer = decider.__class__(
        decider.scorer, decider.rules, config, decider.templates, decider.model_version
    )
    frame = explorer.decide(events.head(30), previous).events
    moved = [any("first retry moved" in r for r in reasons) for reasons in frame["reasons"]]
    assert any(moved)
    propensity = np.asarray(frame["propensity"], dtype=float)
    assert (propensity[np.array(moved)] < 0.5).all()
    assert SHIFTED == 1  # the shift arm's code, read by the reasons


def test_artifacts_saved_before_the_day_arm_keep_exploring_by_shifts_only():
    import pickle

    state = PolicyConfig().__getstate__()
    fields = {k: v for k, v in state["__dict__"].items() if k != "exploration_first_retry_day_rate"}
    loaded = PolicyConfig.__new__(PolicyConfig)
    loaded.__setstate__({**state, "__dict__": fields})
    assert loaded.exploration_first_retry_day_rate == 0.0
    assert PolicyConfig().exploration_first_retry_day_rate == 0.05
    assert pickle.loads(pickle.dumps(loaded)) == loaded


@pytest.mark.parametrize("config", CONFIGS)
def test_each_retry_carries_the_exact_probability_of_its_rank_at_its_time(config):
    """The same enumeration, per retry: the probability returned with a retry is the mass
    of the cells whose schedule has that event's retry of the same rank at that time;
    the first retry's is the schedule's, and no row's is below it."""
    ids, retries, start, end = _case()
    rate, day = config.exploration_rate, config.exploration_first_retry_day_rate
    grid = (np.arange(840) + 0.5) / 840
    draws = [(u, rate / 840) for u in rate * grid]
    draws += [(u, day / 840) for u in rate + day * grid] if day else []
    draws.append((rate + day + (1 - rate - day) / 2, 1 - rate - day))
    mass: dict[tuple[str, int, int], float] = defaultdict(float)
    said: dict[tuple[str, int, int], set[float]] = defaultdict(set)
    for u, weight in draws:
        got = explore(ids, retries, start, end, SPACING, config, np.full(len(ids), u))
        assert len(got.retry_propensity) == len(got.retries)
        rank = pd.Series(got.retries.event_id).groupby(got.retries.event_id).cumcount()
        for i, (event, k, at) in enumerate(
            zip(got.retries.event_id, rank, got.retries.at, strict=True)
        ):
            said[event, k, int(at)].add(round(float(got.retry_propensity[i]), 9))
        for event, times in _schedules(ids, got.retries).items():
            for k, at in enumerate(times):
                mass[event, k, at] += weight
        position = {event: i for i, event in enumerate(ids)}
        for i, event in enumerate(got.retries.event_id):
            assert got.retry_propensity[i] >= got.propensity[position[event]] - 1e-12
    assert said.keys() == mass.keys()
    for key, m in mass.items():
        assert said[key] == {round(min(m, 1.0), 9)}, key
    # the dense event (retries 24 h apart from 72 h): day moves land a first retry on the
    # searched second's time, which stays a rare *first* retry
    e5 = {(k, at // H): m for (event, k, at), m in mass.items() if event == "e5"}
    if day:
        assert e5[0, 96] == pytest.approx(day / 3)  # three other days: 96, 120 and 144 h
        assert e5[1, 96] > 1 - rate - day


def test_a_later_retry_left_in_place_is_more_likely_than_its_schedule():
    """The first retry moved to another day, the second left where it was: the second's
    own probability counts the searched schedule and every other day that keeps it."""
    ids = np.array(["a"], dtype=object)
    retries = RetryRows(ids[[0, 0]], np.array([30, 200], dtype=np.int64) * H)
    start, end = np.array([24 * H]), np.array([14 * DAY_NS])
    config = PolicyConfig(exploration_rate=0.05, exploration_first_retry_day_rate=0.05)
    got = explore(ids, retries, start, end, SPACING, config, np.array([0.0501]))
    assert got.kind[0] == DAY_MOVED
    first, second = got.retry_propensity
    assert first == pytest.approx(got.propensity[0])
    assert got.propensity[0] == pytest.approx(0.05 / 12)  # 12 other days: 1 ... 12
    # the searched schedule (0.9, plus the shifts that leave the window: arm 0 and -12 h)
    # and days 1 to 6, which leave the second at 200 h (30 + 24 d + 24 <= 200)
    assert second == pytest.approx(0.9 + 0.05 / 5 * 2 + 0.05 / 12 * 6)
    assert got.retries.at[1] == 200 * H

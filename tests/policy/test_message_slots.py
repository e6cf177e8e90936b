"""The message search's slot table: the times each round tries, as converting each round's
local hours to UTC on its own gives them, and each round's first allowed time and its local
day, as deferring it on its own gives them (zones with and without daylight saving)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config.policy import PolicyConfig
from training.config.quiet_hours import QuietHours
from training.core.localtime import DAY_NS, HOUR_NS, defer_quiet_ns, local_to_utc_ns, utc_offsets
from training.policy.message_slots import SlotTable, _day_hours

ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "UTC"]


def _each_round_alone(pos, ref, window_end, tz, config):
    """The slots of one round computed from its own local days (the table's reference)."""
    offsets, quiet = _day_hours(
        config.message_days_ahead,
        tuple(config.message_local_hours),
        config.quiet_hours.start_hour,
        config.quiet_hours.end_hour,
    )
    zones = tz if isinstance(tz, str) else tz[pos]
    local = ref[pos] + utc_offsets(ref[pos], zones)
    local_day = local - local % DAY_NS
    grid = np.repeat(np.arange(len(pos)), len(offsets))
    local_ns = (local_day[:, None] + offsets[None, :]).ravel()
    at = local_to_utc_ns(local_ns, zones if isinstance(zones, str) else zones[grid])
    slot_pos = pos[grid]
    keep = (at >= ref[slot_pos]) & (at < window_end[slot_pos]) & ~np.tile(quiet, len(pos))
    pairs = {(int(e), int(ref[p])) for e, p in enumerate(pos)}
    pairs |= {(int(e), int(t)) for e, t in zip(grid[keep], at[keep], strict=True)}
    return sorted(pairs)


QUIET = [(21, 8), (22, 0), (0, 6), (8, 8)]
"""Quiet hours: the default, ending at midnight (Santiago changes then), starting at
midnight, none."""


@pytest.mark.parametrize("quiet", QUIET)
@pytest.mark.parametrize("one_zone", [True, False])
@pytest.mark.parametrize("seed", range(len(ZONES)))  # one zone: each of them
def test_slot_table_tries_the_times_of_each_round_alone(seed, one_zone, quiet):
    config = PolicyConfig(quiet_hours=QuietHours(start_hour=quiet[0], end_hour=quiet[1]))
    assert _check_rounds(seed, one_zone, config)


@pytest.mark.parametrize("seed", range(3))
def test_slots_met_twice_are_tried_once(seed):
    """Every hour of the day: a spring-forward gap moves a local hour onto the next one's
    instant, and the table's rounds drop the second as each round alone does."""
    config = PolicyConfig(
        message_local_hours=tuple(range(24)), quiet_hours=QuietHours(start_hour=0, end_hour=0)
    )
    assert not _check_rounds(seed, True, config)


def _check_rounds(seed: int, one_zone: bool, config: PolicyConfig) -> bool:
    """Three rounds of the table against each round alone; whether no slot met twice."""
    rng = np.random.default_rng(seed)
    n = 40
    quiet = (config.quiet_hours.start_hour, config.quiet_hours.end_hour)
    # failures around the daylight-saving changes of the year
    base = pd.Timestamp("2025-03-01", tz="UTC").value
    failed = base + rng.integers(0, 250 * 24, size=n) * HOUR_NS + rng.integers(0, HOUR_NS, size=n)
    window_end = failed + rng.integers(1, 15, size=n) * DAY_NS
    tz = ZONES[seed] if one_zone else np.array(rng.choice(ZONES, size=n), dtype=object)
    codes = None if one_zone else pd.factorize(tz)[0]
    table = SlotTable(failed, window_end, tz, codes, config)
    gap = int(config.min_message_gap_hours * HOUR_NS)
    for _ in range(3):  # rounds: each event's earliest time moves on, up to a gap past the end
        earliest = failed + (rng.uniform(size=n) * (window_end + gap - failed)).astype(np.int64)
        earliest[:5] = window_end[:5] + gap  # the latest a round can meet
        ref, ref_day = table.defer(earliest)
        assert np.array_equal(ref, defer_quiet_ns(earliest, tz, *quiet))
        assert np.array_equal(ref_day, (ref + utc_offsets(ref, tz)) // DAY_NS - table.first_day)
        pos = np.sort(rng.choice(n, size=n // 2, replace=False))
        owner, at = table.times(pos, ref, ref_day, window_end)
        assert np.array_equal(owner[: len(pos)], np.arange(len(pos)))  # the first times first
        assert np.array_equal(at[: len(pos)], ref[pos])
        later = list(zip(owner[len(pos) :].tolist(), at[len(pos) :].tolist(), strict=True))
        assert later == sorted(later)  # by event, then time
        got = sorted(zip(owner.tolist(), at.tolist(), strict=True))
        assert got == _each_round_alone(pos, ref, window_end, tz, config)
        assert len(set(got)) == len(got)
        if one_zone:
            _check_lone(failed, window_end, tz, config, earliest, ref, ref_day)
    return table.distinct


def _check_lone(failed, window_end, tz, config, earliest, ref, ref_day) -> None:
    """The first events each as a lone request's table: :meth:`SlotTable.defer_one` and
    :meth:`SlotTable.later_one` give what the table of all the events gives each."""
    everyone = np.arange(len(failed))
    table = SlotTable(failed, window_end, tz, None, config)
    owner, at = table.times(everyone, ref, ref_day, window_end)
    owner, at = owner[len(failed) :], at[len(failed) :]
    for i in range(12):
        lone = SlotTable(failed[[i]], window_end[[i]], tz, None, config)
        zones = np.array([tz], dtype=object)  # the general layout of the same event
        general = SlotTable(failed[[i]], window_end[[i]], zones, np.zeros(1, int), config)
        for name in ("first_day", "day", "at", "end_at", "end_day", "row_start"):
            assert np.array_equal(getattr(lone, name), getattr(general, name)), name
        assert (lone.ends, lone.distinct) == (general.ends, general.distinct)
        got = lone.defer_one(int(earliest[i]))
        assert got == (int(ref[i]), int(ref_day[i])) and all(type(v) is int for v in got)
        later = lone.later_one(got[0], got[1], int(window_end[i]))
        assert later.tolist() == at[owner == i].tolist()


@pytest.mark.parametrize("one_zone", [True, False])
def test_deferral_outside_the_table_as_alone(one_zone):
    """Times past the table's last day (a gap longer than the window) are deferred as
    :func:`defer_quiet_ns` defers them."""
    rng = np.random.default_rng(5)
    n = 12
    failed = pd.Timestamp("2025-10-20", tz="UTC").value + rng.integers(0, 24 * 30, n) * HOUR_NS
    window_end = failed + 3 * DAY_NS
    tz = ZONES[0] if one_zone else np.array(rng.choice(ZONES, size=n), dtype=object)
    codes = None if one_zone else pd.factorize(tz)[0]
    table = SlotTable(failed, window_end, tz, codes, PolicyConfig())
    earliest = window_end + rng.integers(5, 40, n) * DAY_NS + rng.integers(0, DAY_NS, n)
    ref, ref_day = table.defer(earliest)
    assert np.array_equal(ref, defer_quiet_ns(earliest, tz, 21, 8))
    assert np.array_equal(ref_day, (ref + utc_offsets(ref, tz)) // DAY_NS - table.first_day)
    if one_zone:
        for i in range(n):
            lone = SlotTable(failed[[i]], window_end[[i]], tz, None, PolicyConfig())
            assert lone.defer_one(int(earliest[i])) == (int(ref[i]), int(ref_day[i]))

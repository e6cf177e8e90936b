"""The message search's slot table: the times each round tries, as converting each round's
local hours to UTC on its own gives them (zones with and without daylight saving)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config.policy import PolicyConfig
from training.core.localtime import DAY_NS, HOUR_NS, local_to_utc_ns, utc_offsets
from training.policy.message_search import _day_hours, _SlotTable

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


@pytest.mark.parametrize("one_zone", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_slot_table_tries_the_times_of_each_round_alone(seed, one_zone):
    rng = np.random.default_rng(seed)
    n = 40
    config = PolicyConfig()
    # failures around the daylight-saving changes of the year
    base = pd.Timestamp("2025-03-01", tz="UTC").value
    failed = base + rng.integers(0, 250 * 24, size=n) * HOUR_NS + rng.integers(0, HOUR_NS, size=n)
    window_end = failed + rng.integers(1, 15, size=n) * DAY_NS
    tz = ZONES[seed] if one_zone else np.array(rng.choice(ZONES, size=n), dtype=object)
    codes = None if one_zone else pd.factorize(tz)[0]
    table = _SlotTable(failed, window_end, tz, codes, config)
    for _ in range(3):  # rounds: each event's first allowed time moves on
        ref = failed + (rng.uniform(size=n) * (window_end - failed)).astype(np.int64)
        pos = np.sort(rng.choice(n, size=n // 2, replace=False))
        owner, at = table.times(pos, ref, window_end)
        assert np.array_equal(owner[: len(pos)], np.arange(len(pos)))  # the first times first
        assert np.array_equal(at[: len(pos)], ref[pos])
        later = list(zip(owner[len(pos) :].tolist(), at[len(pos) :].tolist(), strict=True))
        assert later == sorted(later)  # by event, then time
        got = sorted(zip(owner.tolist(), at.tolist(), strict=True))
        assert got == _each_round_alone(pos, ref, window_end, tz, config)

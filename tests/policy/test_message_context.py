"""The message search's per-call context for one event (message_search.py): the past
attempts laid out on Python values (:func:`_lone_past_attempts`) and the click rates
read once per channel (:meth:`EventMatrix.channel_click_rates`) give the general
path's arrays to the bit, dtypes included, on random pasts; the templates asking for an
update are worked out once per templates and update requests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.config.retry_limits import UpdateRequests
from training.core.columnar import ColumnTable, utc_array
from training.features.dunning_state import is_update_request
from training.models.matrix import EventMatrix
from training.policy.message_search import (
    CHANNELS,
    _asks_update,
    _lone_past_attempts,
    _past_attempts,
)

BASE_NS = 1_767_225_600_000_000_000  # 2026-01-01, beyond 2**53: the float division rounds


def _past(rng: np.random.Generator, rows: int) -> ColumnTable:
    """Random attempts of events 0-3: equal times, no original, other events' rows."""
    ns = BASE_NS + rng.integers(0, 6, rows) * 1_800_000_000_000 + rng.integers(0, 3, rows)
    kind = np.array(["original", "retry", "retry"], dtype=object)[rng.integers(0, 3, rows)]
    return ColumnTable.of({"event_id": rng.integers(0, 4, rows), "t": utc_array(ns), "kind": kind})


def _assert_same(got, want) -> None:
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)  # NaN equal to NaN
        assert g.tobytes() == w.tobytes()


def test_one_events_attempts_equal_the_general_path_to_the_bit():
    rng = np.random.default_rng(11)
    seen = {"none": 0, "no original": 0, "ties": 0}
    for _ in range(400):
        past = _past(rng, int(rng.integers(0, 9)))
        event = int(rng.integers(0, 5))  # 4: an event without attempts
        attempts, start = _lone_past_attempts(event, past)
        want_attempts, want_start = _past_attempts(np.array([event]), past)
        _assert_same(attempts, want_attempts)
        _assert_same([start], [want_start])
        mine = past.data["event_id"] == event
        kinds = past.data["kind"][mine]
        seen["none"] += not mine.any()
        seen["no original"] += bool(mine.any() and (kinds != "original").all())
        seen["ties"] += len(np.unique(past.data["t"][mine])) < mine.sum()
    assert all(count > 10 for count in seen.values()), seen


def test_one_events_attempts_from_a_frame_and_string_ids():
    past = pd.DataFrame(
        {
            "event_id": ["b", "a", "a", "a"],
            "t": pd.to_datetime([3, 2, 1, 2], unit="h", utc=True) + pd.Timedelta(days=20000),
            "kind": ["original", "retry", "original", "retry"],
        }
    )
    attempts, start = _lone_past_attempts("a", past)
    want_attempts, want_start = _past_attempts(np.array(["a"], dtype=object), past)
    _assert_same([*attempts, start], [*want_attempts, want_start])
    assert attempts.is_retry.tolist() == [False, True, True]
    assert attempts.retries.tolist() == [2.0]


def test_click_rates_per_channel_equal_the_rate_of_each_channel():
    rng = np.random.default_rng(5)
    n = 7
    sms = rng.random(n).astype(np.float32)
    sms[2] = np.nan
    matrix = EventMatrix.from_columns(
        np.arange(n), {"cust_sms_click_rate": sms, "cust_email_click_rate": rng.random(n)}
    )
    for pos in (np.array([3]), np.array([0, 2, 2, 6]), np.zeros(0, dtype=np.intp)):
        want = np.array([matrix.channel_click_rate(pos, np.full(len(pos), c)) for c in CHANNELS])
        got = matrix.channel_click_rates(pos, CHANNELS)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
        assert not np.array_equal(got[0], got[1]) or len(pos) == 0


def test_update_requests_per_template_are_kept_read_only_and_equal():
    update = UpdateRequests(("update_card", "card_expired"), 48.0)
    templates = ("reminder", "card_expired", "final", "update_card")
    got = _asks_update(templates, update)
    np.testing.assert_array_equal(got, [False, True, False, True])
    np.testing.assert_array_equal(got, is_update_request(np.array(templates, dtype=object), update))
    assert not got.flags.writeable
    assert _asks_update(templates, update) is got  # kept
    other = _asks_update(templates, UpdateRequests(("final",), 48.0))
    np.testing.assert_array_equal(other, [False, False, True, False])

"""The calendar contrast's moved rows scored from one matrix of the rows copied per move
(training/policy/moved_rows.py) equal, to the bit, the moved rows scored one by one as
:meth:`ModelScorer.row_probabilities` scores them; and the time columns of the moved
instants equal those :meth:`EventMatrix.time_columns` computes for each."""

from __future__ import annotations

import numpy as np

from training.core.localtime import utc_offsets
from training.features.frames import HOUR_RESPONSE_INPUTS, TIME_COLUMNS
from training.features.invoice import events_from_history
from training.models.matrix import EventMatrix
from training.policy.calendar import kind_shifts
from training.policy.moved_rows import can_copy_rows, moved_probabilities, moved_time_columns
from training.policy.schedule_rows import MessageRows, RetryRows
from training.policy.scorer import past_rows

ZONES = ["Europe/London", "America/New_York", "UTC", "Asia/Kathmandu", "Australia/Lord_Howe"]
START = np.datetime64("2026-03-01T00:00", "ns").astype(np.int64)  # DST changes within weeks
DAY = 86_400 * 10**9
MOVES = kind_shifts((1, 3, 5, 7), (4.0,))


def _matrix(rng: np.random.Generator, zones: list[object]) -> EventMatrix:
    n = len(zones)
    names = ("cust_pay_day_of_month", "cust_pay_weekday", "cust_active_hour", *HOUR_RESPONSE_INPUTS)
    columns = {name: rng.uniform(-3.0, 25.0, n) for name in names}
    columns["cust_pay_day_of_month"][::3] = np.nan  # customers without a usual payday
    columns["timezone"] = np.array(zones, dtype=object)
    return EventMatrix.from_columns(np.arange(n).astype(str).astype(object), columns)


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want) == list(TIME_COLUMNS)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)


def test_moved_time_columns_equal_each_moved_instants_own_across_dst_changes():
    rng = np.random.default_rng(3)
    zones = [ZONES[i % len(ZONES)] for i in range(60)]
    matrix = _matrix(rng, zones)
    pos = rng.integers(0, len(zones), 700)
    ns = START + rng.integers(0, 40 * DAY, len(pos))
    ns[::5] -= ns[::5] % (3_600 * 10**9)  # some on the hour, as the searches' grids are
    for shifts in MOVES.values():
        moved = (ns[None, :] + shifts[:, None]).ravel()
        got = moved_time_columns(matrix, pos, ns, shifts)
        _assert_same(got, matrix.time_columns(np.tile(pos, len(shifts)), moved))
    # the day moves cross DST changes: the local minute moves for some rows
    offsets = utc_offsets(np.tile(ns, 8), np.tile(np.array(zones, dtype=object)[pos], 8))
    moved_offsets = utc_offsets(
        (ns[None, :] + MOVES["retry"][:, None]).ravel(),
        np.tile(np.array(zones, dtype=object)[pos], 8),
    )
    assert (offsets != moved_offsets).any()


def test_moved_time_columns_of_one_zone_and_of_missing_zones():
    rng = np.random.default_rng(4)
    pos = rng.integers(0, 20, 300)
    ns = START + rng.integers(0, 40 * DAY, len(pos))
    for zones in (["America/New_York"] * 20, [None, "Europe/London"] * 10):
        matrix = _matrix(rng, zones)
        shifts = MOVES["retry"]
        got = moved_time_columns(matrix, pos, ns, shifts)
        want = matrix.time_columns(
            np.tile(pos, len(shifts)), (ns[None, :] + shifts[:, None]).ravel()
        )
        _assert_same(got, want)


def test_moved_rows_score_as_the_rows_moved_one_by_one(small_world):
    decider = small_world.artifact.decider(compiled=False)
    decider.config = decider.config.model_copy(update={"exploration_rate": 0.0})
    events = events_from_history(small_world.history).tail(40).reset_index(drop=True)
    past = past_rows(events, None)
    features = decider.scorer.event_features(events, None)
    plan = decider.plan(events, None, explore=False, past=past)
    schedules = [(RetryRows.of(plan.retries), MessageRows.of(plan.messages))]
    rows = decider.score_laid_out(events, features, past, schedules)[0].rows
    ids = events["event_id"].to_numpy()[rows.rows.event]
    scorer = decider.scorer
    assert can_copy_rows(scorer, features, scorer.models.retry)
    for kind, part in (("retry", rows.retries), ("message", rows.messages)):
        model = getattr(scorer.models, kind)
        shifts = MOVES[kind]
        at = np.arange(len(ids))[part]
        assert len(at) > 0
        columns = {name: values[at] for name, values in rows.state.items()}
        columns.update(template=rows.rows.template[at], channel=rows.rows.channel[at])
        got = moved_probabilities(
            scorer, model, features, ids[at], rows.rows.ns[at], columns, shifts
        )
        every = np.tile(at, len(shifts))
        want = scorer.row_probabilities(
            features,
            ids[every],
            (rows.rows.ns[at][None, :] + shifts[:, None]).ravel(),
            rows.rows.kind[every],
            rows.rows.template[every],
            rows.rows.channel[every],
            {name: values[every] for name, values in rows.state.items()},
        )
        np.testing.assert_array_equal(got, want, strict=True)


def test_rows_are_copied_only_for_the_trained_models_and_more_than_one_event(small_world):
    decider = small_world.artifact.decider(compiled=False)
    events = events_from_history(small_world.history).tail(2).reset_index(drop=True)
    scorer = decider.scorer
    both = scorer.event_features(events, None)
    one = scorer.event_features(events.head(1), None)
    assert can_copy_rows(scorer, both, scorer.models.message)
    assert not can_copy_rows(scorer, one, scorer.models.message)  # one event: its tables
    assert not can_copy_rows(object(), both, scorer.models.message)
    assert not can_copy_rows(scorer, both, None)

"""The coarse-to-fine retry search: the programme on a coarse grid, then the local
refinement (``policy.retry_grid_hours``, ``policy.refine_steps_hours``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from training.config.policy import PolicyConfig
from training.core.localtime import HOUR_NS, to_ns
from training.features.invoice import events_from_history
from training.policy.message_search import plan_messages
from training.policy.retry_search import _dp, _RetryContext, plan_retries, retry_windows
from training.policy.scorer import past_rows


@pytest.fixture(scope="module")
def case(small_world):
    decider = small_world.artifact.decider()
    events = events_from_history(small_world.history).tail(80).reset_index(drop=True)
    decisions = decider.rules.decide_many(events, None).reset_index(drop=True)
    features = decider.scorer.event_features(events, None)
    past = past_rows(events, None)
    update = decider.rules.limits.update_requests
    messages = plan_messages(
        decider.scorer, events, features, past, decisions, decider.templates, decider.config,
        update,
    )  # fmt: skip
    window = retry_windows(
        events, decisions, messages, update, decider.rules.limits.min_spacing_hours
    )
    return decider, events, features, past, messages, window


def _search(case, config, scorer=None):
    decider, events, features, past, messages, (count, start, end) = case
    limits = decider.rules.limits
    return plan_retries(
        scorer or decider.scorer, events, features, past, messages, count, start, end,
        limits.min_spacing_hours, config, limits.update_requests,
    ).frame()  # fmt: skip


def _log_survival(case, plan: pd.DataFrame, nominal: bool = False) -> pd.Series:
    """log P(every planned retry fails) per event, by the models; with ``nominal``, what
    the programme minimises: each retry scored after the earlier ones failed at the
    nominal gap (``policy.nominal_retry_gap_hours``)."""
    decider, events, features, past, messages, _ = case
    ids = events["event_id"].to_numpy()
    context = _RetryContext.build(
        decider.scorer, features, past, messages, ids, decider.config,
        decider.rules.limits.update_requests,
    )  # fmt: skip
    event = pd.Index(ids).get_indexer(plan["event_id"])
    rank = plan.groupby("event_id").cumcount().to_numpy()
    score = context.model_probabilities if nominal else context.base_probabilities
    p = score(event, to_ns(plan["at"]), rank)
    return pd.Series(np.log1p(-p)).groupby(plan["event_id"].to_numpy()).sum()


def test_each_finer_grid_keeps_every_retry_and_never_lowers_the_programmes_value(case):
    decider = case[0]
    plans = [
        _search(case, decider.config.model_copy(update={"fine_grids_hours": fine}))
        for fine in ((), (3,), (3, 1))
    ]
    values = [_log_survival(case, plan, nominal=True) for plan in plans]
    for (coarse, fine), (before, after) in zip(
        zip(plans, plans[1:], strict=False), zip(values, values[1:], strict=False), strict=True
    ):
        assert (coarse["event_id"].to_numpy() == fine["event_id"].to_numpy()).all()
        assert (after <= before + 1e-12).all() and (after < before - 1e-6).any()
        moved = (fine["at"] - coarse["at"]).dt.total_seconds().abs() / 3600
        assert moved.max() <= 12 and (moved > 0).any()
    hours = (plans[2]["at"] - plans[0]["at"]).dt.total_seconds() / 3600
    assert (hours % 3 != 0).any()  # the last grid is hourly


def test_refinement_never_lowers_the_schedules_value(case):
    decider = case[0]
    coarse = decider.config.model_copy(update={"fine_grids_hours": ()})
    unrefined = _search(case, coarse)
    refined = _search(case, coarse.model_copy(update={"refine_steps_hours": (6, 3, 1)}))
    assert len(unrefined) == len(refined) > len(case[1])
    assert (unrefined["event_id"].to_numpy() == refined["event_id"].to_numpy()).all()
    before, after = _log_survival(case, unrefined), _log_survival(case, refined)
    assert (after <= before + 1e-12).all()
    assert (after < before - 1e-6).sum() > len(before) / 4  # most schedules move
    moved = (refined["at"] - unrefined["at"]).dt.total_seconds().abs() / 3600
    assert moved.max() <= 6 + 3 + 1
    assert (moved % 1 == 0).all() and (moved % coarse.retry_grid_hours != 0).any()


def test_coarse_to_fine_scores_a_fraction_of_the_fine_grid_and_values_as_much(
    case, monkeypatch, count_model_rows
):
    """Against the programme on a 3 h grid refined +-2 h (the search before): under
    half the retry rows, schedules valued within half a point on average."""
    decider = case[0]
    fine_config = decider.config.model_copy(
        update={"retry_grid_hours": 3, "fine_grids_hours": (), "refine_steps_hours": (2, 1)}
    )
    rows = count_model_rows(decider, decider.scorer.models.retry)
    fine = _search(case, fine_config)
    fine_rows = sum(rows)
    rows.clear()
    coarse_to_fine = _search(case, decider.config)
    assert sum(rows) < fine_rows / 2
    monkeypatch.undo()
    lost = np.exp(_log_survival(case, coarse_to_fine)) - np.exp(_log_survival(case, fine))
    assert lost.mean() < 0.005


def test_the_finer_grids_scored_in_one_call_plan_what_a_call_per_grid_plans(
    case, monkeypatch, count_model_rows
):
    """Every cell the 3 h and 1 h bands can try, scored on the hourly grid in one model
    call (a lone request's path): the same plan, to the bit, with one call fewer."""
    import training.policy.retry_search as retry_search

    decider = case[0]
    rows = count_model_rows(decider, decider.scorer.models.retry)
    plans, calls = [], []
    for extra_rows in (0, 10**9):  # never merged, always merged
        monkeypatch.setattr(retry_search, "MERGE_EXTRA_ROWS", extra_rows)
        rows.clear()
        plans.append(_search(case, decider.config))
        calls.append(len(rows))
    pd.testing.assert_frame_equal(plans[1], plans[0])
    assert decider.config.fine_grids_hours == (3, 1) and calls == [3, 2]
    assert len(plans[0]) > len(case[1])


class _PeakScorer:
    """A scorer (the generic interface, as the oracle's) whose retry success peaks
    ``peak_hours`` after each event's failure, and elsewhere falls off smoothly."""

    def __init__(self, failed: pd.Series, peak_hours: float) -> None:
        self.failed = failed
        self.peak_hours = peak_hours

    def candidate_probabilities(self, features, timeline: pd.DataFrame) -> pd.Series:
        rows = timeline[timeline["candidate"].to_numpy(dtype=bool)]
        since = to_ns(rows["t"]) - to_ns(self.failed.loc[rows["event_id"]])
        distance = since / HOUR_NS - self.peak_hours
        return pd.Series(0.05 + 0.3 * np.exp(-((distance / 8) ** 2)), index=rows.index)


@pytest.mark.parametrize("peak_hours", [61.0, 100.0, 150.0])
@pytest.mark.parametrize(
    "search",
    [{}, {"fine_grids_hours": (), "refine_steps_hours": (6, 3, 1)}],
    ids=["finer grids", "refinement"],
)
def test_the_search_finds_an_optimum_between_grid_points(case, peak_hours, search):
    """One retry per event: the 12 h programme lands within 6 h of the peak, the finer
    grids (or the refinement's steps of 6, 3 and 1 h) reach it exactly, whatever hour
    the grid started on."""
    decider, events, features, past, messages, (count, start, end) = case
    single = count > 0
    failed = events.set_index("event_id")["failed_at"]
    one = (np.where(single, 1, 0), start, end)
    limits = decider.rules.limits
    plan = plan_retries(
        _PeakScorer(failed, peak_hours), events, features, past, messages, *one,
        limits.min_spacing_hours, decider.config.model_copy(update=search), limits.update_requests,
    ).frame()  # fmt: skip
    since = (to_ns(plan["at"]) - to_ns(failed.loc[plan["event_id"]])) / HOUR_NS
    peak_ns = to_ns(events["failed_at"])[single] + int(peak_hours * HOUR_NS)
    reachable = start[single] <= peak_ns
    on_grid = reachable & ((peak_ns - start[single]) % HOUR_NS == 0)  # hours from the start
    assert len(plan) == single.sum() and on_grid.sum() > 10 and (reachable & ~on_grid).any()
    np.testing.assert_array_equal(since[on_grid], peak_hours)
    assert (np.abs(since[reachable] - peak_hours) < 1).all()


def test_grids_must_nest_and_steps_be_whole_positive_hours():
    with pytest.raises(ValidationError, match="refine_steps_hours"):
        PolicyConfig(refine_steps_hours=(6, 0))
    assert PolicyConfig(refine_steps_hours=()).refine_steps_hours == ()
    for grids in ((5, 1), (3, 3), (24, 3)):
        with pytest.raises(ValidationError, match="fine_grids_hours"):
            PolicyConfig(retry_grid_hours=12, fine_grids_hours=grids)
    assert PolicyConfig(retry_grid_hours=2, fine_grids_hours=()).fine_grids_hours == ()


def test_artifacts_saved_before_the_coarse_to_fine_search_keep_their_search():
    import pickle

    state = PolicyConfig(retry_grid_hours=3, fine_grids_hours=(1,)).__getstate__()
    fields = {
        k: v
        for k, v in state["__dict__"].items()
        if k not in ("fine_grids_hours", "refine_steps_hours")
    }
    old = {**state, "__dict__": {**fields, "refine_hours": 2}}
    loaded = PolicyConfig.__new__(PolicyConfig)
    loaded.__setstate__(old)
    assert (loaded.retry_grid_hours, loaded.fine_grids_hours, loaded.refine_steps_hours) == (
        3,
        (),
        (2, 1),
    )
    assert not hasattr(loaded, "refine_hours")
    again = pickle.loads(pickle.dumps(loaded))
    assert again == loaded and again.model_copy(
        update={"exploration_rate": 0.0}
    ).refine_steps_hours == (2, 1)


def _whole_grid_dp(log_fail: np.ndarray, count: np.ndarray, spacing: int):
    """The programme over every cell of the grid (the banded one's reference): the best
    cells, first minimum on ties, as (event, cell) pairs."""
    n, k_max, j_max = log_fail.shape
    value = np.full((n, k_max, j_max), np.inf)
    back = np.zeros((n, k_max, j_max), dtype=np.int64)
    value[:, 0] = log_fail[:, 0]
    for k in range(1, k_max):
        for j in range(spacing, j_max):
            before = value[:, k - 1, : j - spacing + 1]
            back[:, k, j] = np.argmin(before, axis=1)
            value[:, k, j] = log_fail[:, k, j] + before.min(axis=1)
    pairs = []
    for e in range(n):
        feasible = [k for k in range(min(count[e], k_max)) if np.isfinite(value[e, k]).any()]
        if not feasible:
            continue
        k = feasible[-1]
        cells = [int(np.argmin(value[e, k]))]
        for kk in range(k, 0, -1):
            cells.append(int(back[e, kk, cells[-1]]))
        pairs += [(e, c) for c in reversed(cells)]
    return pairs


@pytest.mark.parametrize("seed", range(5))
def test_the_banded_programme_chooses_what_the_whole_grid_programme_chooses(seed):
    """Bands of a few cells per retry (anywhere on the grid, overlapping, clipped, with
    ties) decide as the programme over the whole grid with every other cell impossible."""
    rng = np.random.default_rng(seed)
    n, k_max, width, j_max, spacing = 60, 4, 7, 40, 3
    first = np.sort(rng.integers(-3, j_max - width + 3, size=(n, k_max)), axis=1)
    banded = np.round(np.log(rng.uniform(0.2, 0.95, size=(n, k_max, width))), 1)  # ties
    banded[rng.uniform(size=banded.shape) < 0.2] = np.inf
    cell = first[:, :, None] + np.arange(width)
    banded[(cell < 0) | (cell >= j_max)] = np.inf  # outside the window
    count = rng.integers(0, k_max + 1, size=n)
    whole = np.full((n, k_max, j_max), np.inf)
    e, k, w = np.nonzero(np.isfinite(banded))
    whole[e, k, cell[e, k, w]] = banded[e, k, w]
    e_idx, cells = _dp(banded, first, count, spacing)
    assert list(zip(e_idx.tolist(), cells.tolist(), strict=True)) == _whole_grid_dp(
        whole, count, spacing
    )
    on_whole = _dp(whole, np.zeros((n, k_max), dtype=np.int64), count, spacing)
    assert np.array_equal(on_whole[0], e_idx) and np.array_equal(on_whole[1], cells)


@pytest.mark.parametrize("seed", range(5))
def test_the_programme_of_one_event_chooses_as_that_of_many(seed):
    """A lone event (plain Python) gets the cells it gets among many (numpy): bands
    anywhere, clipped, with ties and impossible cells."""
    rng = np.random.default_rng(seed)
    n, k_max, width, spacing = 80, 4, 9, 3
    first = np.sort(rng.integers(-3, 30, size=(n, k_max)), axis=1)
    log_fail = np.round(np.log(rng.uniform(0.2, 0.95, size=(n, k_max, width))), 1)  # ties
    log_fail[rng.uniform(size=log_fail.shape) < 0.3] = np.inf
    log_fail[: n // 8] = np.inf  # events where no retry fits
    count = rng.integers(0, k_max + 1, size=n)
    e_idx, cells = _dp(log_fail, first, count, spacing)
    for e in range(n):
        one_e, one_cells = _dp(log_fail[e : e + 1], first[e : e + 1], count[e : e + 1], spacing)
        assert not one_e.any()
        assert one_cells.tolist() == cells[e_idx == e].tolist()

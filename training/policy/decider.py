"""The learned policy as a :class:`Decider`: search, explore, score, explain."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import pandas as pd

from training.config.policy import PolicyConfig
from training.core.columnar import Table, column_array, column_values
from training.core.frames import numbered
from training.core.localtime import from_ns, to_ns
from training.core.randomness import process_rng
from training.declines.rules import RetryRules
from training.features.dunning_state import state_of_rows
from training.models.matrix import EventMatrix, as_event_matrix
from training.policy.baselines import fixed_schedule_columns
from training.policy.calendar import (
    Slope,
    leveled,
    row_contrasts,
    scored_with_contrast,
    slope_pair,
    steepened,
)
from training.policy.decisions import DecisionColumns, Decisions, new_decision_ids
from training.policy.exploration import (
    Explored,
    explore,
    message_propensities,
    with_exploration_reasons,
)
from training.policy.message_pruning import (
    Schedule,
    ScheduleValues,
    protected_messages,
    prune_messages,
)
from training.policy.message_search import plan_messages
from training.policy.reasons import model_reasons
from training.policy.retry_search import plan_retries, retry_windows
from training.policy.schedule_layout import general_layout, lone_layout
from training.policy.schedule_rows import MessageRows, RetryRows
from training.policy.scorer import (
    ModelScorer,
    ScoredRows,
    past_rows,
    past_table,
)

MEMO_ROWS = 512
"""Fewest rows a whole-schedule scoring looks up in the call's :class:`ScoredRows`: a
lone request's few dozen rows cost less to score than to look up."""

Rows: TypeAlias = pd.DataFrame | dict[str, np.ndarray] | RetryRows | MessageRows
"""A schedule's retries or messages: a frame, its columns (times as int64 ns), or the
searches' rows (:mod:`training.policy.schedule_rows`)."""
Scored: TypeAlias = tuple[Rows, Rows] | tuple[Rows, Rows, np.ndarray]
"""A schedule to score: :data:`~training.policy.message_pruning.Schedule`, or columns."""


class Plan(NamedTuple):
    """What the learned policy plans for a set of events (before the probabilities of the
    whole schedules are computed)."""

    decisions: Table  # the rules engine's decision per event
    features: EventMatrix  # the events' features, encoded once per model
    retries: RetryRows  # event_id, at (``.frame()`` for a frame)
    messages: MessageRows  # event_id, send_at, template, channel, response_probability
    propensity: np.ndarray  # probability of this plan under exploration, per event
    explored: Explored | None = None  # which arm each event's plan came from (exploring)


class SearchedSchedules(NamedTuple):
    """What the searches propose, and each event's retry window (ns) they searched in."""

    messages: MessageRows
    retries: RetryRows
    start: np.ndarray
    end: np.ndarray


def search_schedules(
    scorer: Any,
    events: Table,
    features: pd.DataFrame | EventMatrix,
    past: Table,
    decisions: Table,
    templates: list[str],
    config: PolicyConfig,
    rules: RetryRules,
    values: ScheduleValues | None = None,
    searched: Callable[[SearchedSchedules], None] | None = None,
) -> SearchedSchedules:
    """Messages first, then retries inside the window the rules and those messages leave,
    then (with ``values``, the same scorer's expected recovery of whole schedules and
    ``config.prune_messages``) the messages the whole schedule does not need are dropped.

    ``scorer``: the trained models (:class:`ModelScorer`) or any scorer with
    ``candidate_probabilities`` (the evaluation's ground truth, for the oracle);
    ``searched``: called with the searched schedules before the pruning (which keeps
    their retries and windows, and drops only messages)."""
    limits = rules.limits
    update = limits.update_requests
    messages = plan_messages(scorer, events, features, past, decisions, templates, config, update)
    count, start, end = retry_windows(events, decisions, messages, update, limits.min_spacing_hours)
    retries = plan_retries(
        scorer,
        events,
        features,
        past,
        messages,
        count,
        start,
        end,
        limits.min_spacing_hours,
        config,
        update,
    )
    if searched is not None:
        searched(SearchedSchedules(messages, retries, start, end))
    if values is not None and config.prune_messages and len(messages):
        protected = protected_messages(events, decisions, messages, update)
        messages = prune_messages(
            events, retries, messages, protected, values, config.min_message_gain
        )
    return SearchedSchedules(messages, retries, start, end)


class ModelDecider:
    """Decisions from a trained artifact; the same object the API, batch scoring and the
    evaluation use."""

    def __init__(
        self,
        scorer: ModelScorer,
        rules: RetryRules,
        config: PolicyConfig,
        templates: list[str],
        model_version: str,
        description: dict[str, Any] | None = None,
        gain_shrinkage: float = 1.0,
        gain_threshold: float = 0.0,
        calendar_slopes: dict[str, Slope] | None = None,
        calendar_moves: dict[str, np.ndarray] | None = None,
        calendar_category_slopes: dict[str, dict[str, Slope]] | None = None,
        chosen_levels: dict[str, dict[str, float]] | None = None,
    ) -> None:
        self.scorer = scorer
        self.gain_shrinkage = gain_shrinkage
        self.gain_threshold = gain_threshold
        self.calendar_slopes = calendar_slopes or {}
        self.calendar_moves = calendar_moves or {}
        self.calendar_category_slopes = calendar_category_slopes or {}
        # log-odds added to the searched schedule's rows per kind and decline category
        # (training/artifact/chosen_level.py)
        self.chosen_levels = chosen_levels or {}
        self.rules = rules
        self.config = config
        self.templates = templates
        self._version = model_version
        self._description = description or {}

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def fallback(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        return {"model_version": self._version, "fallback": False, **self._description}

    def plan(
        self,
        events: Table,
        previous_attempts: pd.DataFrame | None,
        explore: bool = True,
        past: Table | None = None,
        decisions: Table | None = None,
        memo: ScheduleScores | None = None,
    ) -> Plan:
        """Rules decision, event features, retries, messages and propensities (``past``:
        :func:`past_rows` of the events, ``decisions``: the rules engine's, when the caller
        has them already; ``memo``: where the pruning's scores are kept for the caller)."""
        events = numbered(events)
        if decisions is None:
            decisions = numbered(self.rules.decide_many(events, previous_attempts))
        features = self.scorer.event_features(events, previous_attempts)
        past = past_rows(events, previous_attempts) if past is None else past
        if memo is None:
            memo = ScheduleScores(self, events, features, past)
        else:
            memo.bind(features)
        kept: list[Explored] = []

        def explore_searched(found: SearchedSchedules) -> None:
            """The exploration drawn before the pruning (it moves only retries, which the
            pruning keeps): a lone request's moved schedule with the searched messages is
            then scored in the pruning's first call, and reused when the pruning drops
            nothing (a batch's pruning drops some event's message: its final schedule
            is another, scored after it as before)."""
            if explore and self.config.exploration_rate > 0 and len(found.retries):
                kept.append(self._explore(events, found.retries, found.start, found.end))
                if kept[0].retries is not found.retries and len(events) == 1:
                    memo.extra.append((kept[0].retries, found.messages))

        searched = search_schedules(
            self.scorer,
            events,
            features,
            past,
            decisions,
            self.templates,
            self.config,
            self.rules,
            memo.values,
            explore_searched,
        )
        retries, messages = searched.retries, searched.messages
        propensity, explored = np.ones(len(events)), kept[0] if kept else None
        if explored is not None:
            retries, propensity = explored.retries, explored.propensity
        return Plan(decisions, features, retries, messages, propensity, explored)

    def _explore(
        self,
        events: Table,
        retries: RetryRows,
        start: np.ndarray,
        end: np.ndarray,
        draw: np.ndarray | None = None,
    ) -> Explored:
        """With probability ``exploration_rate`` shift every retry by one of the configured
        offsets (kept only where the whole shifted schedule stays inside the limits); with
        ``exploration_first_retry_day_rate`` move the first retry to another allowed day
        (:mod:`training.policy.exploration`; ``start``, ``end``: the searched windows,
        which :func:`retry_windows` ends at the rules' ``retry_deadline`` too; ``draw``: the
        uniform draws, one per event, for tests)."""
        if draw is None:
            draw = process_rng().random(len(events))
        limits = self.rules.limits
        return explore(
            column_array(events, "event_id"),
            retries,
            start,
            end,
            limits.min_spacing_hours,
            self.config,
            draw,
        )

    def expected_recovery(
        self,
        events: Table,
        features: pd.DataFrame | EventMatrix,
        past: Table,
        retries: pd.DataFrame,
        messages: pd.DataFrame,
    ) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
        """Model estimate per event, plus per-row probabilities of retries and messages."""
        return self.expected_recoveries(events, features, past, [(retries, messages)])[0]

    def expected_recoveries(
        self,
        events: Table,
        features: pd.DataFrame | EventMatrix,
        past: Table,
        schedules: list[tuple[pd.DataFrame, pd.DataFrame]],
    ) -> list[tuple[pd.Series, pd.DataFrame, pd.DataFrame]]:
        """:meth:`expected_recovery` of several schedules per event (retries, messages),
        scored together: one model call per model, however many schedules."""
        ids = column_array(events, "event_id")
        scored = self.score_schedules(events, features, past, schedules)
        return [
            (pd.Series(expected, index=ids), *_probability_frames(r, m, p))
            for (r, m), (expected, p) in zip(schedules, scored, strict=True)
        ]

    def score_schedules(
        self,
        events: Table,
        features: pd.DataFrame | EventMatrix,
        past: Table,
        schedules: Sequence[Scored],
        p_self: np.ndarray | None = None,
        scored_rows: ScoredRows | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per schedule: the expected recovery per event (the events' order) and the
        probability of each of its rows (its retries, then its messages), as arrays;
        ``p_self``: the events' self-cure probabilities, when the caller has them;
        ``scored_rows``: the rows this call scored before (looked up, not scored again)."""
        laid = self.score_laid_out(events, features, past, schedules, p_self, scored_rows)
        return [(score.expected, score.p) for score in laid]

    def score_laid_out(
        self,
        events: Table,
        features: pd.DataFrame | EventMatrix,
        past: Table,
        schedules: Sequence[Scored],
        p_self: np.ndarray | None = None,
        scored_rows: ScoredRows | None = None,
    ) -> list[LaidOut]:
        """:meth:`score_schedules` with each schedule's rows as laid out and scored
        (:class:`ScheduleRows`: their dunning state and probabilities kept, for the
        calendar contrast of the reported probability, :meth:`steepened_values`)."""
        ids = column_array(events, "event_id")
        n, count = len(ids), len(schedules)
        if p_self is None:
            window = column_array(events, "window_days")
            p_self = self.scorer.self_cure_probabilities(as_event_matrix(features), window)
        columns = _FrameColumns()  # the pruning passes one retries frame for every schedule
        retries = [columns.rows(s[0], "at", None) for s in schedules]
        messages = [
            (columns.rows(s[1], "send_at", None), s[2] if len(s) == 3 else None) for s in schedules
        ]
        # one event (a lone request): the same layout and sums on Python lists
        layout = lone_layout(ids, past, retries, messages) if n == 1 else None
        lone = layout is not None
        if layout is None:
            layout = general_layout(ids, past, retries, messages)
        key, ns, kind, template, channel, candidate, n_h, sizes, event = layout
        _, state = state_of_rows(
            key, ns, kind, template, candidate, self.rules.limits.update_requests
        )
        # the candidate rows (those ``state`` describes) are the rows after the past ones
        tail = slice(n_h, None)
        rows = _Rows(event, ns[tail], kind[tail], template[tail], channel[tail])
        moves = self._contrast_moves()
        contrast: np.ndarray | None = None
        if moves and len(rows.ns) < MEMO_ROWS:  # a few rows: the moved copies in the same call
            p, contrast = scored_with_contrast(
                self.scorer, features, ids[rows.event], *rows[1:], state, moves
            )
        else:
            p = self._row_probabilities(features, ids, rows, state, scored_rows)
        log_miss = np.log1p(-np.clip(p, 0, 1 - 1e-9))
        if lone:  # bincount's sums: in row order from 0.0, on Python floats
            sums = [0.0] * count
            for k, value in zip(key[tail].tolist(), log_miss.tolist(), strict=True):
                sums[k] += value
            survival = np.array(sums)
        else:
            survival = np.bincount(key[tail], weights=log_miss, minlength=n * count)
        expected = 1.0 - (1.0 - np.tile(p_self, count)) * np.exp(survival)
        # candidate rows are the schedules' rows in the order given: retries, then messages
        bounds = list(accumulate(sizes, initial=0))  # schedule s: its retries' rows at
        # bounds[s]:bounds[s + 1], its messages' at bounds[count + s]:bounds[count + s + 1]
        values = p.tolist() if lone and p.dtype == np.float64 else None
        laid = []
        for s in range(count):
            retry_rows = slice(bounds[s], bounds[s + 1])
            message_rows = slice(bounds[count + s], bounds[count + s + 1])
            if values is None:
                own = np.concatenate([p[retry_rows], p[message_rows]])
            else:  # (one call, not three: the same float64 values)
                own = np.array(values[retry_rows] + values[message_rows], dtype=np.float64)
            laid.append(
                LaidOut(
                    expected[s * n : (s + 1) * n],
                    own,
                    ScheduleRows(rows, state, p, retry_rows, message_rows, contrast),
                )
            )
        return laid

    def _row_probabilities(
        self,
        features: pd.DataFrame | EventMatrix,
        ids: np.ndarray,
        rows: _Rows,
        state: dict[str, np.ndarray],
        scored_rows: ScoredRows | None,
    ) -> np.ndarray:
        """Probability of each candidate row (``rows.event``: the event's position in
        ``ids``), the rows ``scored_rows`` knows looked up."""

        def score(at: np.ndarray | slice) -> np.ndarray:
            return self.scorer.row_probabilities(
                features,
                ids[rows.event[at]],
                rows.ns[at],
                rows.kind[at],
                rows.template[at],
                rows.channel[at],
                {name: values[at] for name, values in state.items()},
            )

        if scored_rows is None or len(rows.ns) < MEMO_ROWS:
            return score(slice(None))
        key = scored_rows.key(rows.event, rows.ns, rows.kind, rows.template, rows.channel, state)
        return scored_rows.probabilities(key, score)

    def reported_recovery(self, searched: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        """The probability reported for a searched schedule: the fixed schedule's value
        plus the searched gain over it, its part above ``gain_threshold`` (all of it when
        0) times ``gain_shrinkage`` (the search's optimism,
        training/artifact/gain_shrinkage.py); the models' own value where the fixed
        schedule has none (NaN)."""
        gain = searched - fixed
        threshold = getattr(self, "gain_threshold", 0.0)
        if threshold > 0:
            shrunk = searched - (1.0 - self.gain_shrinkage) * np.maximum(gain - threshold, 0.0)
        else:
            shrunk = fixed + self.gain_shrinkage * gain
        return np.where(np.isnan(fixed), searched, shrunk)

    def _sloped_kinds(self) -> set[str]:
        """The kinds with a calendar slope, pooled or for some decline category."""
        return self._calendar_kinds().sloped

    def _contrast_moves(self) -> dict[str, np.ndarray]:
        """The calendar moves of the kinds with a slope (none: no contrast reported)."""
        return self._calendar_kinds().moves

    def _calendar_kinds(self) -> CalendarKinds:
        """:func:`calendar_kinds` of the decider's slopes and moves, worked out once and
        kept while the three stay the same objects (a lone decision reads them five
        times, ~0.2 M instructions in all; a test assigning new ones is seen)."""
        slopes = getattr(self, "calendar_slopes", {})  # artifacts saved before it
        by_category = getattr(self, "calendar_category_slopes", {})
        moves = getattr(self, "calendar_moves", {})
        kept = self.__dict__.get("_calendar_kept")
        if kept is None or not all(
            a is b for a, b in zip(kept[0], (slopes, by_category, moves), strict=True)
        ):
            kept = ((slopes, by_category, moves), calendar_kinds(slopes, by_category, moves))
            self.__dict__["_calendar_kept"] = kept
        return kept[1]

    def reported_values(
        self,
        events: Table,
        features: pd.DataFrame | EventMatrix,
        laid: tuple[LaidOut, LaidOut],
        p_self: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`reported_recovery` of the searched schedule against the fixed one (both
        as :meth:`score_laid_out` scored them), both valued with each row's calendar
        contrast steepened when the artifact measured it (policy/calendar.py)."""
        searched, fixed = laid[0].expected, laid[1].expected
        levels = any(getattr(self, "chosen_levels", {}).values())
        if (self._sloped_kinds() or levels) and not np.isnan(fixed).all():
            searched, fixed = self.steepened_values(events, features, laid, p_self, levels)
        return self.reported_recovery(searched, fixed)

    def steepened_values(
        self,
        events: Table,
        features: pd.DataFrame | EventMatrix,
        laid: Sequence[LaidOut],
        p_self: np.ndarray | None = None,
        level_first: bool = False,
    ) -> list[np.ndarray]:
        """Per schedule, its expected recovery per event (the events' order) with each
        row's probability steepened by its calendar contrast (policy/calendar.py) and, with
        ``level_first``, the first (searched) schedule's rows moved by the level of their
        kind and decline category (``chosen_levels``). The
        rows, their state and probabilities are those :meth:`score_laid_out` kept, and
        their contrasts when it scored them along (a lone request's few rows); else only
        the moved rows of the kinds with a slope are scored, all in one call."""
        slopes = getattr(self, "calendar_slopes", {})
        moves = self._contrast_moves()
        ids = column_array(events, "event_id")
        n, count = len(ids), len(laid)
        if p_self is None:
            window = column_array(events, "window_days")
            p_self = self.scorer.self_cure_probabilities(as_event_matrix(features), window)
        # every schedule's retries, then every schedule's messages (one model's rows together)
        blocks = [(s, score.rows, score.rows.retries) for s, score in enumerate(laid)] + [
            (s, score.rows, score.rows.messages) for s, score in enumerate(laid)
        ]

        def joined(column: Callable[[ScheduleRows], np.ndarray]) -> np.ndarray:
            return np.concatenate([column(rows)[part] for _, rows, part in blocks])

        key = np.concatenate([s * n + rows.rows.event[part] for s, rows, part in blocks])
        kind, p = joined(lambda r: r.rows.kind), joined(lambda r: r.p)
        if all(score.rows.contrast is not None for score in laid):  # scored with the rows
            contrast = joined(lambda r: r.contrast)  # type: ignore[arg-type,return-value]
        else:
            state = {
                name: np.concatenate([rows.state[name][part] for _, rows, part in blocks])
                for name in laid[0].rows.state
            }
            contrast = row_contrasts(
                self.scorer,
                features,
                ids[key % n],
                joined(lambda r: r.rows.ns),
                kind,
                joined(lambda r: r.rows.template),
                joined(lambda r: r.rows.channel),
                state,
                moves,
                p,
            )
        by_category = getattr(self, "calendar_category_slopes", {})
        category = None
        if any(by_category.values()) or level_first:  # each row's event's decline category
            matrix = as_event_matrix(features)
            category = matrix.column("inv_decline_category")[matrix.positions(ids)][key % n]
        q = steepened(p, contrast, kind, slopes, category, by_category)
        if level_first and category is not None:
            q = leveled(q, kind, category, getattr(self, "chosen_levels", {}), key < n)
        survival = np.bincount(
            key.astype(np.int64), weights=np.log1p(-np.clip(q, 0, 1 - 1e-9)), minlength=n * count
        )
        expected = 1.0 - (1.0 - np.tile(p_self, count)) * np.exp(survival)
        return [expected[s * n : (s + 1) * n] for s in range(count)]

    def steepened_rows(
        self,
        features: pd.DataFrame | EventMatrix,
        event_ids: np.ndarray,
        ns: np.ndarray,
        kind: np.ndarray,
        template: np.ndarray,
        channel: np.ndarray,
        state: dict[str, np.ndarray],
        p: np.ndarray,
    ) -> np.ndarray:
        """Rows' probabilities ``p`` steepened by their calendar contrast, as
        :meth:`steepened_values` values a schedule's rows (for rows outside a schedule:
        the logged rows the chosen level is fitted on)."""
        moves = self._contrast_moves()
        if not moves:
            return p
        contrast = row_contrasts(
            self.scorer, features, event_ids, ns, kind, template, channel, state, moves, p
        )
        matrix = as_event_matrix(features)
        category = matrix.column("inv_decline_category")[matrix.positions(event_ids)]
        return steepened(
            p,
            contrast,
            kind,
            getattr(self, "calendar_slopes", {}),
            category,
            getattr(self, "calendar_category_slopes", {}),
        )

    def decide(self, events: Table, previous_attempts: pd.DataFrame | None) -> Decisions:
        events = numbered(events)
        past = past_table(events, previous_attempts)  # columns, not frames: read as arrays
        decisions = self.rules.decide_table(events, previous_attempts)
        fixed = fixed_schedule_columns(
            events,
            previous_attempts,
            self.rules,
            self.config.baseline,
            decisions,
            quiet_hours=self.config.quiet_hours,
        )
        # the fixed schedule's messages can only be valued by a message model (a history
        # without messages trains none): its estimate is then unknown (NaN)
        baseline = [fixed] if self.scorer.models.message is not None else []
        memo = ScheduleScores(self, events, None, past, baseline)
        plan = self.plan(events, previous_attempts, past=past, decisions=decisions, memo=memo)
        scored = memo.laid_out([(plan.retries, plan.messages), *baseline])
        expected_v = scored[0].expected
        retry_p, message_p = _probability_columns(
            plan.retries, plan.messages, scored[0].p, sort=True, propensity=_row_propensities(plan)
        )
        baseline_v = scored[1].expected if baseline else expected_v * np.nan  # events' order
        if baseline:
            expected_v = self.reported_values(
                events, plan.features, (scored[0], scored[1]), memo.p_self
            )
        reasons = model_reasons(
            events,
            decisions,
            plan.features,
            plan.retries,
            plan.messages,
            expected_v,
            baseline_v,
            self.config,
        )
        if plan.explored is not None:
            reasons = with_exploration_reasons(reasons, plan.explored)
        summary = {
            "event_id": column_array(events, "event_id"),
            "decline_category": column_array(decisions, "category"),
            "retryable": column_array(decisions, "retryable"),
            "expected_recovery_probability": expected_v,
            "baseline_recovery_probability": baseline_v,
            "propensity": plan.propensity,
            "decision_id": new_decision_ids(len(events)),
            "reasons": reasons,
            "fallback": np.zeros(len(events), dtype=bool),
        }
        return Decisions.from_columns(DecisionColumns(summary, retry_p, message_p))


class CalendarKinds(NamedTuple):
    """The kinds with a calendar slope (pooled or for some decline category) and the
    calendar moves of those kinds (none: no contrast reported)."""

    sloped: set[str]
    moves: dict[str, np.ndarray]


def calendar_kinds(
    slopes: Mapping[str, Slope],
    by_category: Mapping[str, Mapping[str, Slope]],
    moves: Mapping[str, np.ndarray],
) -> CalendarKinds:
    """:class:`CalendarKinds` of an artifact's pooled and per-category slopes and moves."""
    sloped = {
        k
        for k in ("retry", "message")
        if any(
            slope_pair(c) != (0.0, 0.0)
            for c in [slopes.get(k, 0.0), *by_category.get(k, {}).values()]
        )
    }
    return CalendarKinds(sloped, {k: v for k, v in moves.items() if k in sloped and len(v)})


class _Rows(NamedTuple):
    """Candidate rows of whole schedules as columns (``event``: position in the events)."""

    event: np.ndarray
    ns: np.ndarray
    kind: np.ndarray
    template: np.ndarray
    channel: np.ndarray


class ScheduleRows(NamedTuple):
    """One scored schedule's rows as :meth:`ModelDecider.score_laid_out` laid them out:
    its retries and its messages, slices of the scoring call's rows, their dunning state
    and probabilities (shared by the schedules scored together, never copied)."""

    rows: _Rows
    state: dict[str, np.ndarray]
    p: np.ndarray
    retries: slice
    messages: slice
    contrast: np.ndarray | None = None  # rows x 2 (date, hour parts), when scored with them


class LaidOut(NamedTuple):
    """A scored schedule: its expected recovery per event, its rows' probabilities
    (retries, then messages) and its rows as laid out."""

    expected: np.ndarray
    p: np.ndarray
    rows: ScheduleRows


class _FrameColumns:
    """Columns of frames as arrays, each read once per frame (by identity, frames kept)."""

    def __init__(self) -> None:
        self._kept: dict[tuple[int, str], tuple[pd.DataFrame, np.ndarray]] = {}

    def get(self, frame: Rows, name: str) -> np.ndarray:
        if isinstance(frame, dict):  # columns already (the fixed schedule's)
            return frame[name]
        if isinstance(frame, RetryRows | MessageRows):  # the searches' rows
            return getattr(frame, name)
        key = (id(frame), name)
        if key not in self._kept:
            self._kept[key] = (frame, column_array(frame, name, object))
        return self._kept[key][1]

    def ns(self, frame: Rows, name: str) -> np.ndarray:
        if isinstance(frame, dict):  # times as int64 ns already
            return frame[name]
        if isinstance(frame, RetryRows | MessageRows):  # the searches' rows
            return getattr(frame, name)
        key = (id(frame), f"{name} ns")
        if key not in self._kept:
            self._kept[key] = (frame, to_ns(column_values(frame, name)))
        return self._kept[key][1]

    def rows(self, frame: Rows, time: str, keep: np.ndarray | None) -> dict[str, np.ndarray]:
        """event_id, ns (of column ``time``) and, for messages, template and channel of the
        frame's rows (those of ``keep`` only, when given)."""
        out = {"event_id": self.get(frame, "event_id"), "ns": self.ns(frame, time)}
        if time == "send_at":
            out["template"] = self.get(frame, "template")
            out["channel"] = self.get(frame, "channel")
        if keep is not None:
            out = {name: values[keep] for name, values in out.items()}
        return out


class ScheduleScores:
    """The scores of whole schedules within one decision call, kept by content.

    The message pruning's last round scores the schedule the decision then reports, and
    the fixed schedule (the baseline) does not depend on the search: it is scored with the
    pruning's first round (``extra``), and the final scoring reuses both, which saves a
    model call per model and the self-cure model's calls (the same for every schedule).
    Rows are scored independently and summed per schedule in the same order, so the
    figures are the same to the last bit as scoring each schedule alone.

    Within the schedules scored, rows are kept too (:class:`ScoredRows`): the pruning's
    trial schedules share most rows with the whole one and with the next round's.

    A schedule is known by the identity of its two frames (kept alive here, so an id is
    never reused within the call): the frames of a decision are never changed in place,
    and a changed schedule (the exploration's shifted retries) is a new frame."""

    def __init__(
        self,
        decider: ModelDecider,
        events: Table,
        features: pd.DataFrame | EventMatrix | None,
        past: Table,
        extra: Sequence[Scored] | None = None,
    ) -> None:
        self.decider, self.events, self.past = decider, events, past
        self.features = features
        self.extra = list(extra or [])
        self.p_self: np.ndarray | None = None
        self.rows = ScoredRows()
        self.kept: dict[tuple, tuple[Scored, LaidOut]] = {}

    def bind(self, features: pd.DataFrame | EventMatrix) -> None:
        """The events' features (computed after the memo was made)."""
        self.features = features

    def scores(self, schedules: Sequence[Scored]) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`ModelDecider.score_schedules` of ``schedules``, scoring only those not
        scored before (together with the pending ``extra`` ones)."""
        return [(score.expected, score.p) for score in self.laid_out(schedules)]

    def laid_out(self, schedules: Sequence[Scored]) -> list[LaidOut]:
        """:meth:`ModelDecider.score_laid_out` of ``schedules``, as :meth:`scores`."""
        assert self.features is not None, "bind the events' features first"
        keys = [_schedule_key(schedule) for schedule in schedules]
        missing: dict[tuple, Scored] = {}
        for key, schedule in zip(keys, schedules, strict=True):
            if key not in self.kept:
                missing.setdefault(key, schedule)
        if missing:
            for schedule in self.extra:
                missing.setdefault(_schedule_key(schedule), schedule)
            self.extra = []
            if self.p_self is None:
                window = column_array(self.events, "window_days")
                matrix = as_event_matrix(self.features)
                self.p_self = self.decider.scorer.self_cure_probabilities(matrix, window)
            scored = self.decider.score_laid_out(
                self.events,
                self.features,
                self.past,
                list(missing.values()),
                self.p_self,
                self.rows,
            )
            for (key, schedule), score in zip(missing.items(), scored, strict=True):
                self.kept[key] = (schedule, score)
        return [self.kept[key][1] for key in keys]

    def values(self, schedules: list[Schedule]) -> list[np.ndarray]:
        """Expected recovery of each schedule, in the events' order (the pruning's input)."""
        return [expected for expected, _ in self.scores(schedules)]


def _schedule_key(schedule: Scored) -> tuple:
    """A schedule by the identity of its frames (and the messages' rows it keeps)."""
    keep = schedule[2].tobytes() if len(schedule) == 3 else None
    return (id(schedule[0]), id(schedule[1]), keep)


def _probability_frames(
    retries: pd.DataFrame | RetryRows,
    messages: pd.DataFrame | MessageRows,
    p: np.ndarray,
    sort: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A schedule's rows with their probabilities (``p``: retries, then messages); with
    ``sort``, each frame ordered by event id, then time (stable), as ``sort_values`` would."""
    retry_p, message_p = _probability_columns(retries, messages, p, sort)
    return _frame(retry_p, "at"), _frame(message_p, "send_at")


def _probability_columns(
    retries: pd.DataFrame | RetryRows,
    messages: pd.DataFrame | MessageRows,
    p: np.ndarray,
    sort: bool = False,
    propensity: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`_probability_frames` as columns, times as int64 ns (``propensity``: each
    retry's and message's own, added as a ``propensity`` column)."""
    retries, messages = RetryRows.of(retries), MessageRows.of(messages)
    n_r = len(retries)
    retry_columns = {"event_id": retries.event_id, "at": retries.at, "success_probability": p[:n_r]}
    message_columns = {
        "event_id": messages.event_id,
        "send_at": messages.send_at,
        "template": messages.template,
        "channel": messages.channel,
        "response_probability": p[n_r:],
    }
    if propensity is not None:
        retry_columns["propensity"], message_columns["propensity"] = propensity
    return (
        _sorted_columns(retry_columns, "at", sort),
        _sorted_columns(message_columns, "send_at", sort),
    )


def _row_propensities(plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Each returned retry's and message's own probability (1 when nothing explored)."""
    explored = plan.explored
    retries = np.ones(len(plan.retries)) if explored is None else explored.retry_propensity
    return retries, message_propensities(len(plan.messages))


def _sorted_columns(columns: dict[str, np.ndarray], time: str, sort: bool) -> dict[str, np.ndarray]:
    """``columns`` (``time`` as int64 ns), rows by event id, then time when ``sort``. Not
    copied: the schedule frames they come from are never changed in place."""
    if not sort:
        return columns
    ids, ns = columns["event_id"], columns[time]
    if len(ids) == 0 or (ids == ids[0]).all():  # one event (a lone request): by time
        order = np.argsort(ns, kind="stable")
    else:
        order = np.lexsort((ns, pd.factorize(ids, sort=True)[0]))
    if (order == np.arange(len(order))).all():  # the search's rows usually are in order
        return columns
    return {name: values[order] for name, values in columns.items()}


def _frame(columns: dict[str, np.ndarray], time: str) -> pd.DataFrame:
    """A frame of ``columns``, ``time`` (int64 ns) as UTC timestamps."""
    return pd.DataFrame({**columns, time: from_ns(columns[time])}, copy=False)

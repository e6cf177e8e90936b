"""The message half of the schedule search: greedy, one message per round.

Each round, per event still in budget: (a) score every template x allowed channel at the
first allowed time and keep the best pair; (b) score that pair at the allowed local
hours of the next days and keep the best time, if its response probability is worth a
message. Update requests come first for declines that need a new card.

With the trained models, candidates are scored straight from arrays
(:func:`training.features.dunning_state.message_state` and an
:class:`~training.models.matrix.EventMatrix`); any other scorer (the ground truth, for
the oracle) gets each candidate as a timeline. Both see the same candidates.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from training.config.policy import PolicyConfig
from training.config.retry_limits import UpdateRequests
from training.core.arrays import best_per_group, group_counter
from training.core.columnar import Table, column_array, column_values
from training.core.localtime import HOUR_NS, to_ns
from training.features.dunning_state import PastAttempts, is_update_request, message_state
from training.models.matrix import Labels, as_event_matrix
from training.models.template_support import TemplateSupport
from training.policy.message_slots import SlotTable
from training.policy.schedule_rows import MessageRows
from training.policy.scorer import ModelScorer, build_timeline

MERGE_EXTRA_ROWS = 256
"""Most rows a round may add to score its two steps in one model call: a model call
costs ~0.4 ms around the trees, a row a few microseconds."""


CHANNELS = np.array(["email", "sms"], dtype=object)
"""The channels a message goes by; candidates hold their codes (positions here)."""
CHANNELS.flags.writeable = False  # shared: its encodings are kept across calls


@lru_cache(maxsize=16)
def _template_labels(templates: tuple[str, ...]) -> np.ndarray:
    """A decider's templates as a read-only object array, the same object every call (the
    model encodes it once per process: ``EventMatrix._encoded_labels``)."""
    labels = np.array(templates, dtype=object)
    labels.flags.writeable = False
    return labels


@lru_cache(maxsize=16)
def _asks_update(templates: tuple[str, ...], update: UpdateRequests) -> np.ndarray:
    """Per template code, whether it asks for an update (:func:`is_update_request` of the
    decider's labels), read-only and kept per templates and update requests (both
    immutable values: the same every call), where every call's context compared them."""
    found = is_update_request(_template_labels(templates), update)
    found.flags.writeable = False
    return found


_KEPT_BOUNDS: dict[tuple[int, int], tuple[object, np.ndarray, tuple[np.ndarray, np.ndarray]]] = {}


def _support_bounds(
    fitted: TemplateSupport, templates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``fitted.bounds(templates)``, kept per support and read-only templates array (the
    model's, and the decider's labels, :func:`_template_labels`: the same objects every
    call; ~13 µs a call worked out again); the bounds read-only."""
    if templates.flags.writeable:
        return fitted.bounds(templates)
    key = (id(fitted), id(templates))
    kept = _KEPT_BOUNDS.get(key)
    if kept is None or kept[0] is not fitted or kept[1] is not templates:
        if len(_KEPT_BOUNDS) > 64:
            _KEPT_BOUNDS.clear()
        lower, upper = fitted.bounds(templates)
        lower.flags.writeable = upper.flags.writeable = False
        kept = _KEPT_BOUNDS[key] = (fitted, templates, (lower, upper))
    return kept[2]


class _Candidates:
    """Message candidates as one int64 block, a row each: event position, send time
    (ns), and the codes of their template (its position in the call's templates) and
    channel (in :data:`CHANNELS`): integers are cheaper to gather, each label is encoded
    for the model once (:class:`~training.models.matrix.Labels`), and a round gathers
    or joins candidates in one call instead of one per column."""

    __slots__ = ("block",)

    def __init__(self, block: np.ndarray) -> None:
        self.block = block

    @classmethod
    def of(
        cls, pos: np.ndarray, ns: np.ndarray, template: np.ndarray, channel: np.ndarray
    ) -> _Candidates:
        return cls(np.array([pos, ns, template, channel], dtype=np.int64))

    @property
    def pos(self) -> np.ndarray:
        return self.block[0]

    @property
    def ns(self) -> np.ndarray:
        return self.block[1]

    @property
    def template(self) -> np.ndarray:
        return self.block[2]

    @property
    def channel(self) -> np.ndarray:
        return self.block[3]

    def take(self, rows: np.ndarray) -> _Candidates:
        return _Candidates(self.block.take(rows, axis=1))

    @classmethod
    def concat(cls, parts: list[_Candidates]) -> _Candidates:
        return cls(np.concatenate([p.block for p in parts], axis=1))

    def __len__(self) -> int:
        return self.block.shape[1]


def _empty() -> _Candidates:
    return _Candidates(np.zeros((4, 0), dtype=np.int64))


def _best_per_event(candidates: _Candidates, p: np.ndarray, one_event: bool) -> np.ndarray:
    """Row of the most likely candidate per event (ties: the earlier row), by event;
    ``one_event``: the candidates are one event's (a lone request), whose row is the
    first maximum (``argmax``; sorted as any other, should a probability be NaN)."""
    if one_event and len(p):
        best = int(p.argmax())
        if not math.isnan(p[best]):
            return np.array([best])
    return best_per_group(np.lexsort((-p, candidates.pos)), candidates.pos)


class _Context:
    """Per-call arrays the rounds share: events, their past attempts, the scorer."""

    def __init__(
        self,
        scorer,
        events: Table,
        features,
        past: Table,
        update: UpdateRequests,
        templates: list[str],
    ) -> None:
        self.scorer = scorer
        self.templates = _template_labels(tuple(templates))
        self.asks_update = _asks_update(tuple(templates), update)  # per template code
        self.update = update
        self.features = features
        self.past = past
        self.ids = column_array(events, "event_id")
        self.one_event = len(self.ids) == 1
        tz = column_array(events, "timezone", object)
        self.tz: np.ndarray | str
        self.tz_codes: np.ndarray | None = None
        if len(tz) == 1 and isinstance(tz[0], str):  # a lone request's zone
            self.tz = str(tz[0])
        else:
            tz = np.where(pd.isna(tz), "UTC", tz)
            same = len(tz) > 0 and isinstance(tz[0], str) and (tz == tz[0]).all()
            self.tz = str(tz[0]) if same else tz  # one zone: no per-row work
            self.tz_codes = None if same else pd.factorize(tz)[0]  # equal codes: equal zones
        self.fast = isinstance(scorer, ModelScorer)
        self.support: tuple[np.ndarray, np.ndarray] | None = None
        # the trained message model's template bounds (train.model.template_time_support),
        # whichever path scores it; a scorer without trained models (the truth) has none
        message_model = getattr(getattr(scorer, "models", None), "message", None)
        fitted = getattr(message_model, "template_support", None)
        if fitted is not None:
            self.support = _support_bounds(fitted, self.templates)
        if self.fast:
            self.matrix = as_event_matrix(features)
            self.rows = self.matrix.positions(self.ids)
            # each event's click rate by channel code (a row per channel), read per round
            self.click_rate = self.matrix.channel_click_rates(self.rows, CHANNELS)
            self.attempts, self.start = (
                _lone_past_attempts(self.ids[0], past)
                if self.one_event
                else _past_attempts(self.ids, past)
            )

    def probabilities(self, candidates: _Candidates, chosen: _Candidates) -> np.ndarray:
        """Response probability of each candidate, after the messages ``chosen`` so far."""
        if len(candidates) == 0:
            return np.zeros(0)
        if not self.fast:
            p = self._timeline_probabilities(candidates, chosen)
            if self.support is None:
                return p
            since = candidates.ns / HOUR_NS - self._failure_hours()[candidates.pos]
            return self._within_support(p, since, candidates.template)
        order = np.lexsort((chosen.ns, chosen.pos))
        chosen = chosen.take(order)
        hours = candidates.ns / HOUR_NS
        state = message_state(
            candidates.pos, hours, candidates.template, self.start, self.attempts,
            chosen.pos, chosen.ns / HOUR_NS, chosen.template, self.asks_update[chosen.template],
            self.update.plausible_after_hours,
        )  # fmt: skip
        rows = self.rows[candidates.pos]
        columns: dict[str, np.ndarray | Labels] = {
            **state,
            **self.matrix.time_columns(rows, candidates.ns),
            "template": Labels(candidates.template, self.templates),
            "channel": Labels(candidates.channel, CHANNELS),
            "channel_click_rate": self.click_rate[candidates.channel, candidates.pos],
        }
        model = self.scorer.models.message
        p = self.scorer.predict(model, self.matrix, rows, columns)
        if self.support is not None:
            p = self._within_support(p, state["hours_since_failure"], candidates.template)
        return p

    def _within_support(self, p: np.ndarray, since: np.ndarray, template: np.ndarray) -> np.ndarray:
        """0 for a template outside the hours since failure it was logged at."""
        assert self.support is not None
        lower, upper = self.support
        return np.where((since < lower[template]) | (since > upper[template]), 0.0, p)

    def _failure_hours(self) -> np.ndarray:
        """Each event's original charge (hours since the epoch), as the fast path's
        ``start``: the earliest original attempt in ``past``."""
        owner = _positions(self.ids, column_array(self.past, "event_id"))
        kind = column_array(self.past, "kind")
        original = (owner >= 0) & (kind == "original")
        hours = to_ns(column_values(self.past, "t"))[original] / HOUR_NS
        start = np.full(len(self.ids), np.nan)
        np.fmin.at(start, owner[original], hours)
        return start

    def _timeline_probabilities(self, candidates: _Candidates, chosen: _Candidates) -> np.ndarray:
        """Each candidate as its own schedule: the event's past, the messages chosen, it."""
        n = len(candidates)
        keys = pd.DataFrame({"key": np.arange(n), "event_id": self.ids[candidates.pos]})
        context = keys.merge(self.frame(chosen).drop(columns="response_probability"), on="event_id")
        messages = pd.concat(
            [
                self.frame(candidates)
                .drop(columns="response_probability")
                .assign(key=np.arange(n), candidate=True),
                context.assign(candidate=False),
            ],
            ignore_index=True,
        )
        no_retries = pd.DataFrame(
            {"key": pd.Series(dtype=np.int64), "at": pd.Series(dtype="datetime64[ns, UTC]")}
        )
        timeline = build_timeline(keys, self.past, no_retries, messages.drop(columns="candidate"))
        proposed = timeline["kind"] == "message"
        timeline.loc[proposed, "candidate"] = column_array(messages, "candidate")
        p = self.scorer.candidate_probabilities(self.features, timeline)
        out = np.zeros(n)
        out[timeline.loc[p.index, "key"].to_numpy()] = p.to_numpy()
        return out

    def schedule(self, c: _Candidates, p: np.ndarray | None = None) -> MessageRows:
        """Candidates as a schedule's messages (ids as the events hold them)."""
        return MessageRows(
            self.ids[c.pos],
            c.ns,
            self.templates[c.template],
            CHANNELS[c.channel],
            np.full(len(c), np.nan) if p is None else p,
        )

    def frame(self, c: _Candidates) -> pd.DataFrame:
        return self.schedule(c).frame()


def _past_attempts(ids: np.ndarray, past: Table) -> tuple[PastAttempts, np.ndarray]:
    """The attempts in ``past`` of the events ``ids`` (sorted by event and time) and each
    event's original charge (hours since the epoch: the earliest original attempt, NaN
    when none)."""
    owner = _positions(ids, column_array(past, "event_id"))
    keep = owner >= 0
    hours = to_ns(column_values(past, "t"))[keep] / HOUR_NS
    kind = column_array(past, "kind")[keep]
    order = np.lexsort((hours, owner[keep]))
    att_pos, att_hours = owner[keep][order], hours[order]
    att_retry = (kind != "original")[order]
    attempts = PastAttempts.of(att_pos, att_hours, att_retry, len(ids))
    start = np.full(len(ids), np.nan)
    original = ~att_retry
    np.fmin.at(start, att_pos[original], att_hours[original])
    return attempts, start


def _lone_past_attempts(event_id: object, past: Table) -> tuple[PastAttempts, np.ndarray]:
    """:func:`_past_attempts` of one event on Python values: the same arrays (values and
    dtypes) from a few list operations, where the general path's dozen numpy calls on a
    few rows cost ~0.1 M instructions a lone decision. The hours are numpy's (the
    int64 nanoseconds divided as float64), sorted stably as ``lexsort`` sorts them."""
    mine = column_array(past, "event_id") == event_id
    hours = to_ns(column_values(past, "t"))[mine] / HOUR_NS
    kind = column_array(past, "kind")[mine].tolist()
    values = hours.tolist()
    order = sorted(range(len(values)), key=values.__getitem__)
    retry = [kind[i] != "original" for i in order]
    sorted_hours = [values[i] for i in order]
    originals = [h for h, r in zip(sorted_hours, retry, strict=True) if not r]
    count = len(order)
    latest = sorted_hours[-1] if count else math.nan
    attempts = PastAttempts(
        np.zeros(count, dtype=np.intp),
        np.array(sorted_hours, dtype=np.float64),
        np.array(retry, dtype=bool),
        np.array([latest]),
        np.array([float(count - len(originals))]),
    )
    return attempts, np.array([originals[0] if originals else math.nan])


def plan_messages(
    scorer,
    events: Table,
    features,
    past: Table,
    decisions: Table,
    templates: list[str],
    config: PolicyConfig,
    update: UpdateRequests,
) -> MessageRows:
    """Greedy message plan: event_id, send_at, template, channel, response_probability.

    ``update``: the update-request templates (the first message of a decline that needs
    an update first is one of them) and the delay the features assume."""
    context = _Context(scorer, events, features, past, update, templates)
    chosen, chosen_p = _empty(), np.zeros(0)
    if not templates or events.empty:
        return context.schedule(chosen)
    failed = to_ns(column_values(events, "failed_at")).copy()
    window_end = failed + column_array(events, "window_days", np.int64) * 24 * HOUR_NS
    earliest = failed.copy()
    budget = column_array(events, "max_messages", np.int64)
    force_update = column_array(decisions, "needs_update_first", bool) & (
        any(t in templates for t in update.templates)
    )
    email = column_array(events, "allow_email", bool)
    sms = column_array(events, "allow_sms", bool) & column_array(events, "sms_opt_in", bool)
    gap = int(config.min_message_gap_hours * HOUR_NS)
    channels = np.stack([email, sms])  # in the order of CHANNELS
    # first round: an event that needs an update first is only asked for one
    is_ask = np.array([t in update.templates for t in templates])
    asks_update = is_ask[:, None] | ~force_update[None, :]  # template x event
    any_template = np.ones_like(asks_update)
    table = SlotTable(failed, window_end, context.tz, context.tz_codes, config)
    if context.fast and context.one_event and isinstance(context.tz, str):
        allowed = [c for c in range(len(CHANNELS)) if channels[c, 0]]
        first = [t for t in range(len(templates)) if is_ask[t] or not force_update[0]]
        pairs = (
            [(t, c) for t in first for c in allowed],
            [(t, c) for t in range(len(templates)) for c in allowed],
        )
        return _plan_one(
            context, table, (int(failed[0]), int(window_end[0])), int(budget[0]),
            bool(force_update[0]), pairs, gap, config,
        )  # fmt: skip
    scored = _Scored(len(context.ids))
    for round_ in range(int(budget.max())):
        ref, ref_day = table.defer(earliest)  # (ref may be earliest: read before it moves)
        active = (budget > round_) & (ref < window_end)
        if not active.any():
            break
        reused, reused_p = _empty(), np.zeros(0)
        if config.reuse_message_scores and round_ > 0:
            # from a round that tried every template (not an update-first event's first)
            free = active & ((round_ > 1) | ~force_update)
            reused, reused_p = scored.still_allowed(free, earliest, window_end)
        scoring = active.copy()
        scoring[reused.pos] = False
        # (a) which template and channel, at the first allowed time
        combos = _combos(scoring & channels, asks_update if round_ == 0 else any_template, ref)
        if len(combos) == 0 and len(reused) == 0:
            break
        slots, p = reused, reused_p
        if len(combos):
            fresh, fresh_p = _round(context, table, combos, chosen, ref, ref_day, window_end)
            if config.reuse_message_scores:
                scored.keep(fresh, fresh_p)
            slots, p = _Candidates.concat([reused, fresh]), np.concatenate([reused_p, fresh_p])
        pick = _best_per_event(slots, p, context.one_event)
        pick = pick[p[pick] >= config.min_message_gain]
        if len(pick) == 0:
            break
        picked = slots.take(pick)
        chosen = _Candidates.concat([chosen, picked])
        chosen_p = np.concatenate([chosen_p, p[pick]])
        earliest[picked.pos] = picked.ns + gap
        stopped = active.copy()
        stopped[picked.pos] = False
        earliest[stopped] = window_end[stopped]
    # by event id, then time (the order every schedule frame has)
    order = np.lexsort((chosen.ns, _id_rank(context.ids)[chosen.pos]))
    return context.schedule(chosen.take(order), chosen_p[order])


def _plan_one(
    context: _Context,
    table: SlotTable,
    window: tuple[int, int],
    budget: int,
    force_update: bool,
    pairs: tuple[list[tuple[int, int]], list[tuple[int, int]]],
    gap: int,
    config: PolicyConfig,
) -> MessageRows:
    """:func:`plan_messages`' rounds for a lone request's one event (the models scoring,
    one zone): the same candidates, scores and picks, the bookkeeping on Python integers
    (its first allowed time, the window, the budget, the messages chosen) where the
    general loop spends a few dozen numpy calls a round on one-element arrays.
    ``window``: the failed charge and the window's end (ns); ``pairs``: the (template,
    channel) codes the first round and the later ones try, in :func:`_combos`' order."""
    earliest, window_end = window
    chosen: list[tuple[int, int, int]] = []  # send time (ns), template, channel
    chosen_p: list[float] = []
    kept: tuple[_Candidates, np.ndarray] | None = None  # the last scored round's (reuse)
    for round_ in range(budget):
        ref, ref_day = table.defer_one(earliest)
        if not ref < window_end:
            break
        slots = None
        if kept is not None and round_ > 0 and (round_ > 1 or not force_update):
            ns = kept[0].ns
            rows = np.flatnonzero((ns >= earliest) & (ns < window_end))
            if len(rows):
                slots = kept[0].take(rows), kept[1][rows]
        if slots is None:
            tried = pairs[0] if round_ == 0 else pairs[1]
            if not tried:
                break
            k = len(tried)
            combos = _Candidates(
                np.array(
                    [[0] * k, [ref] * k, [t for t, _ in tried], [c for _, c in tried]],
                    dtype=np.int64,
                )
            )
            slots = _round_one(context, table, combos, _chosen(chosen), ref, ref_day, window_end)
            if config.reuse_message_scores:
                kept = slots
        candidates, p = slots
        best = int(_best_per_event(candidates, p, True)[0])
        if not p[best] >= config.min_message_gain:
            break
        at, template, channel = (int(v) for v in candidates.block[1:, best])
        chosen.append((at, template, channel))
        chosen_p.append(p[best])
        earliest = at + gap
    order = sorted(range(len(chosen)), key=lambda i: chosen[i][0])  # stable, as lexsort
    return context.schedule(
        _chosen([chosen[i] for i in order]), np.array([chosen_p[i] for i in order], dtype=float)
    )


def _chosen(rows: list[tuple[int, int, int]]) -> _Candidates:
    """A lone request's messages chosen (send time, template, channel) as candidates."""
    if not rows:
        return _empty()
    return _Candidates(
        np.array([[0] * len(rows), *([r[j] for r in rows] for j in range(3))], dtype=np.int64)
    )


def _round_one(
    context: _Context,
    table: SlotTable,
    combos: _Candidates,
    chosen: _Candidates,
    ref: int,
    ref_day: int,
    window_end: int,
) -> tuple[_Candidates, np.ndarray]:
    """:func:`_round` of one event (:func:`_plan_one`): the same rows, in the same order,
    scored in the same calls, built with a handful of numpy calls."""
    later = table.later_one(ref, ref_day, window_end)
    k, m = len(combos), len(later)
    if m and k * m - m <= MERGE_EXTRA_ROWS:  # :func:`_merged_round`
        block = np.empty((4, k + k * m), dtype=np.int64)
        block[:, :k] = combos.block
        block[:, k:] = np.repeat(combos.block, m, axis=1)
        block[1, k:] = np.tile(later, k)
        scored = _Candidates(block)
        p = context.probabilities(scored, chosen)
        best = int(_best_per_event(combos, p[:k], True)[0])
        rows = np.arange(k + best * m - 1, k + best * m + m)
        rows[0] = best
        return scored.take(rows), p[rows]
    p_combos = context.probabilities(combos, chosen)
    best = int(_best_per_event(combos, p_combos, True)[0])
    slots = combos.take(np.full(m + 1, best))
    slots.block[1, 1:] = later
    rest = slots.take(np.arange(1, m + 1))
    return slots, np.concatenate([p_combos[best : best + 1], context.probabilities(rest, chosen)])


class _Scored:
    """Each event's candidates of the last round that scored it, and their scores: a
    later round may pick among them (``reuse_message_scores``) instead of scoring its
    own. They are scored without the messages chosen since (the pruning then judges
    every message with the whole schedule); the rows are the same whether a round was
    scored in one model call or two (its pair at each of its times), so a lone request
    and a batch pick the same."""

    def __init__(self, events: int) -> None:
        self.candidates, self.p = _empty(), np.zeros(0)
        self.events = events

    def keep(self, candidates: _Candidates, p: np.ndarray) -> None:
        """A round's scored candidates (they replace those of its events)."""
        fresh = np.zeros(self.events, dtype=bool)
        fresh[candidates.pos] = True
        old = np.flatnonzero(~fresh[self.candidates.pos])
        self.candidates = _Candidates.concat([self.candidates.take(old), candidates])
        self.p = np.concatenate([self.p[old], p])

    def still_allowed(
        self, events: np.ndarray, earliest: np.ndarray, window_end: np.ndarray
    ) -> tuple[_Candidates, np.ndarray]:
        """The kept candidates of ``events`` (booleans) from ``earliest`` to the window's
        end, and their scores."""
        pos, ns = self.candidates.pos, self.candidates.ns
        rows = np.flatnonzero(events[pos] & (ns >= earliest[pos]) & (ns < window_end[pos]))
        return self.candidates.take(rows), self.p[rows]


def _combos(allowed: np.ndarray, template_ok: np.ndarray, ref: np.ndarray) -> _Candidates:
    """Every (template, channel) of every event at its first allowed time ``ref``, by
    template, then channel, then event: ``allowed`` (channel x event) where the channel
    may be used, ``template_ok`` (template x event) where the template may."""
    template, channel, pos = np.nonzero(allowed[None, :, :] & template_ok[:, None, :])
    return _Candidates.of(pos, ref[pos], template, channel)


def _id_rank(ids: np.ndarray) -> np.ndarray:
    """Rank of each (unique) event id in sorted order: schedules are sorted by event id."""
    if len(ids) <= 1:
        return np.zeros(len(ids), dtype=np.intp)
    return pd.factorize(ids, sort=True)[0]


def _positions(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in the unique ``ids`` (-1 if absent); one id without an index."""
    if len(ids) == 1:
        return np.where(values == ids[0], 0, -1)
    return pd.Index(ids).get_indexer(values)


def _round(
    context: _Context,
    table: SlotTable,
    combos: _Candidates,
    chosen: _Candidates,
    ref: np.ndarray,
    ref_day: np.ndarray,
    window_end: np.ndarray,
) -> tuple[_Candidates, np.ndarray]:
    """One round's (a) and (b): the best pair of each event at the allowed times, and the
    response probability of each of those candidates.

    (a) needs the pairs' probabilities before (b) knows which pair's times to score. The
    times do not depend on the pair, so when every pair at every time costs few rows
    more (a lone request), both are scored in one model call: a call costs far more
    than a few dozen rows, and rows are scored independently, so the figures are the
    same as those of the two calls."""
    events = np.unique(combos.pos)
    owner, at = table.times(events, ref, ref_day, window_end)
    later = len(owner) - len(events)  # times after the first (those come first, one each)
    if context.fast and later:
        counts = np.bincount(owner[len(events) :], minlength=len(events))
        per_combo = counts[np.searchsorted(events, combos.pos)]
        if int(per_combo.sum()) - later <= MERGE_EXTRA_ROWS:
            return _merged_round(context, combos, chosen, events, at, counts, per_combo)
    p_combos = context.probabilities(combos, chosen)
    best = _best_per_event(combos, p_combos, context.one_event)
    pairs = combos.take(best)
    slots = pairs.take(owner)
    slots.block[1] = at
    rest = slots.take(np.arange(len(events), len(slots)))  # the first times: scored in (a)
    return slots, np.concatenate([p_combos[best], context.probabilities(rest, chosen)])


def _merged_round(
    context: _Context,
    combos: _Candidates,
    chosen: _Candidates,
    events: np.ndarray,
    at: np.ndarray,
    counts: np.ndarray,
    per_combo: np.ndarray,
) -> tuple[_Candidates, np.ndarray]:
    """:func:`_round` in one model call: every pair at its event's every time
    (``counts``: each event's times after its first; ``per_combo``: the same per pair)."""
    n, k = len(events), len(combos)
    first = n + np.cumsum(counts) - counts  # each event's times after its first (in ``at``)
    times = np.repeat(first[np.searchsorted(events, combos.pos)], per_combo)
    times += group_counter(per_combo)
    # every pair at its first time, then each pair at its event's later times
    rows = np.concatenate([np.arange(k), np.repeat(np.arange(k), per_combo)])
    scored = combos.take(rows)
    scored.block[1, k:] = at[times]
    p = context.probabilities(scored, chosen)
    best = _best_per_event(combos, p[:k], context.one_event)
    starts = k + np.cumsum(per_combo) - per_combo  # each pair's later times in ``scored``
    rows = np.concatenate(
        [best, np.repeat(starts[best], per_combo[best]) + group_counter(per_combo[best])]
    )
    return scored.take(rows), p[rows]

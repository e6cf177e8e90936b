"""Score schedules with the trained models: per-event success and response
probabilities, and the expected recovery of a whole schedule.

    P(recovered) = 1 - P(no unprompted payment) * prod over events (1 - p_event)

where each retry's ``p`` comes from the retry model given everything scheduled before
it (earlier retries failed, messages sent), each message's from the message model, and
the unprompted part from the self-cure model's daily hazards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training.config.retry_limits import UpdateRequests
from training.core.arrays import group_counter, group_first
from training.core.columnar import (
    ColumnTable,
    Table,
    column_array,
    column_values,
    utc_array,
)
from training.core.localtime import HOUR_NS, from_ns, to_ns
from training.declines.table import DeclineTable
from training.features.customer import CustomerIndex
from training.features.dunning_state import timeline_state_arrays
from training.features.frames import event_feature_columns
from training.models.calibrated import CalibratedModel
from training.models.fit import TrainedModels
from training.models.matrix import EventMatrix, as_event_matrix

PARALLEL_ROWS = 5_000  # below this, starting threads costs more than it saves


def past_rows(events: Table, previous_attempts: pd.DataFrame | None) -> pd.DataFrame:
    """The attempts already made per event: the first is the original charge."""
    return past_table(events, previous_attempts).frame()


def past_table(events: Table, previous_attempts: pd.DataFrame | None) -> ColumnTable:
    """:func:`past_rows` as columns (event_id, t, kind), no frame: what the decision
    passes its searches and scoring."""
    ids = [column_array(events, "event_id")]
    times = [to_ns(column_values(events, "failed_at"))]
    if previous_attempts is not None and len(previous_attempts):
        ids.append(column_array(previous_attempts, "event_id"))
        times.append(to_ns(column_values(previous_attempts, "attempted_at")))
    event_ids, ns = np.concatenate(ids), np.concatenate(times)
    if len(event_ids) and (event_ids == event_ids[0]).all():  # one event: by time
        order = np.argsort(ns, kind="stable")
    else:
        order = np.lexsort((ns, pd.factorize(event_ids, sort=True)[0]))  # by event id, time
    event_ids, ns = event_ids[order], ns[order]
    first = group_first(event_ids)
    return ColumnTable.of(
        {
            "event_id": event_ids,
            "t": utc_array(ns),
            "kind": np.where(first, "original", "retry").astype(object),
        }
    )


def past_of_keys(
    keys: pd.DataFrame, past: Table
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The past rows of every key's event (a left join of keys on ``past``, in key order
    then past order): key, event_id, t (ns), kind."""
    return past_of_events(column_array(keys, "key"), column_array(keys, "event_id"), past)


def past_of_events(
    key: np.ndarray, event_ids: np.ndarray, past: Table
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`past_of_keys` of keys given as arrays (``key`` and its ``event_ids``)."""
    past_events = column_array(past, "event_id")
    one_event = len(past_events) > 0 and bool((past_events == past_events[0]).all())
    if one_event and len(event_ids) and bool((event_ids == past_events[0]).all()):
        # a lone request's schedules: every key gets all the past rows, in their order
        rows = np.tile(np.arange(len(past_events)), len(key))
        return (
            np.repeat(key, len(past_events)),
            past_events[rows],
            to_ns(column_values(past, "t"))[rows],
            column_array(past, "kind", object)[rows],
        )
    if one_event:  # one event: no hashing
        codes, uniques = np.zeros(len(past_events), dtype=np.intp), past_events[:1]
    else:
        codes, uniques = pd.factorize(past_events)
    counts = np.bincount(codes, minlength=len(uniques))
    order = np.argsort(codes, kind="stable")
    first = np.cumsum(counts) - counts
    if len(uniques) == 1:  # one event (a lone request): no index to build
        which = np.where(event_ids == uniques[0], 0, -1)
    else:
        which = pd.Index(uniques).get_indexer(event_ids)
    if len(which) and which.min() < 0:
        raise KeyError("a schedule's event has no past attempts (not even its failed charge)")
    per_key = counts[which]
    rows = order[np.repeat(first[which], per_key) + group_counter(per_key)]
    return (
        np.repeat(key, per_key),
        past_events[rows],
        to_ns(column_values(past, "t"))[rows],
        column_array(past, "kind", object)[rows],
    )


def build_timeline(
    keys: pd.DataFrame,
    past: Table,
    retries: pd.DataFrame,
    messages: pd.DataFrame,
    candidate_kinds: tuple[str, ...] = ("retry", "message"),
) -> pd.DataFrame:
    """Timelines of many schedules (``keys``: key, event_id) over the events' pasts.

    retries: key, at; messages: key, send_at, template, channel. Proposed rows of the
    kinds in ``candidate_kinds`` are candidates (get probabilities); the past never is.
    Built column by column with numpy (this runs in the policy's inner loop).
    """
    h_key, h_event, h_ns, h_kind = past_of_keys(keys, past)
    key_index = pd.Index(keys["key"].to_numpy())
    key_events = keys["event_id"].to_numpy()
    n_h, n_r, n_m = len(h_key), len(retries), len(messages)
    nothing = np.full(n_h + n_r, None, dtype=object)
    return pd.DataFrame(
        {
            "key": np.concatenate([h_key, retries["key"].to_numpy(), messages["key"].to_numpy()]),
            "event_id": np.concatenate(
                [
                    h_event,
                    key_events[key_index.get_indexer(retries["key"].to_numpy())],
                    key_events[key_index.get_indexer(messages["key"].to_numpy())],
                ]
            ),
            "t": from_ns(np.concatenate([h_ns, to_ns(retries["at"]), to_ns(messages["send_at"])])),
            "kind": np.concatenate(
                [
                    h_kind,
                    np.full(n_r, "retry", dtype=object),
                    np.full(n_m, "message", dtype=object),
                ]
            ),
            "template": np.concatenate([nothing, messages["template"].to_numpy(dtype=object)]),
            "channel": np.concatenate([nothing, messages["channel"].to_numpy(dtype=object)]),
            "candidate": np.concatenate(
                [
                    np.zeros(n_h, dtype=bool),
                    np.full(n_r, "retry" in candidate_kinds),
                    np.full(n_m, "message" in candidate_kinds),
                ]
            ),
        }
    )


@dataclass
class ModelScorer:
    """The trained models plus the customer history they read features from, the decline
    table and the update-request rule the features were computed with."""

    models: TrainedModels
    log: pd.DataFrame
    table: DeclineTable
    update: UpdateRequests
    threads: int = 1  # LightGBM threads for big calls (a batch); small ones use one
    _index: CustomerIndex | None = field(default=None, init=False, repr=False)

    def predict(
        self, model: CalibratedModel, matrix: EventMatrix, pos: np.ndarray, columns: dict
    ) -> np.ndarray:
        """Calibrated probabilities of ``model`` for rows built by ``matrix``."""
        rows = matrix.model_matrix(model, pos, columns)  # a new matrix: clipped in place
        threads = self.threads if len(rows) >= PARALLEL_ROWS else 1
        return model.predict_matrix(rows, threads=threads, owned=True)

    @property
    def customer_index(self) -> CustomerIndex:
        """Running sums of the customer log, built once and kept."""
        self.warm_up()
        assert self._index is not None
        return self._index

    def warm_up(self) -> None:
        """Build what the first decision would otherwise build: the customer index."""
        if self._index is None:
            self._index = CustomerIndex.build(self.log)

    def event_features(self, events: Table, previous_attempts: pd.DataFrame | None) -> EventMatrix:
        """The events' features, ready to be encoded for each model once per call."""
        columns = event_feature_columns(
            events, None, self.table, previous_attempts, index=self.customer_index
        )
        return EventMatrix.from_columns(column_array(events, "event_id"), columns)

    def self_cure_probability(
        self, features: pd.DataFrame | EventMatrix, window_days: pd.Series
    ) -> pd.Series:
        """P(the customer pays unprompted within the window), per event_id."""
        matrix = as_event_matrix(features)
        p = self.self_cure_probabilities(matrix, window_days.to_numpy())
        return pd.Series(p, index=pd.Index(matrix.ids))

    def self_cure_probabilities(self, matrix: EventMatrix, window_days: np.ndarray) -> np.ndarray:
        """:meth:`self_cure_probability` as an array in the features' order (no frames:
        the decision calls this once per request)."""
        n = len(matrix)
        days = int(window_days.max()) if len(window_days) else 0
        if days == 0:
            return np.zeros(n)
        pos = np.repeat(np.arange(n), days)
        day_index = np.tile(np.arange(days), n)
        start = to_ns(matrix.column("dunning_start"))
        at = start[pos] + (day_index * 24 + 12) * HOUR_NS
        model = self.models.self_cure
        columns = {**matrix.time_columns(pos, at, model), "day_index": day_index.astype(float)}
        hazard = self.predict(model, matrix, pos, columns)
        limit = window_days[pos]  # window_days: in the order of the features
        hazard = np.where(day_index < limit, hazard, 0.0)
        log_survival = np.bincount(
            pos, weights=np.log1p(-np.clip(hazard, 0, 1 - 1e-9)), minlength=n
        )
        return 1.0 - np.exp(log_survival)

    def candidate_probabilities(
        self, features: pd.DataFrame | EventMatrix, timeline: pd.DataFrame
    ) -> pd.Series:
        """Success (retry) or response (message) probability of every candidate row."""
        wanted, state = timeline_state_arrays(timeline, self.update)
        if len(wanted) == 0:
            return pd.Series(dtype=float)
        p = self.row_probabilities(
            features,
            timeline["event_id"].to_numpy()[wanted],
            to_ns(timeline["t"])[wanted],
            timeline["kind"].to_numpy()[wanted],
            timeline["template"].to_numpy(dtype=object)[wanted],
            timeline["channel"].to_numpy(dtype=object)[wanted],
            state,
        )
        return pd.Series(p, index=timeline.index[wanted])

    def row_probabilities(
        self,
        features: pd.DataFrame | EventMatrix,
        event_ids: np.ndarray,
        ns: np.ndarray,
        kind: np.ndarray,
        template: np.ndarray,
        channel: np.ndarray,
        state: dict[str, np.ndarray],
    ) -> np.ndarray:
        """Probabilities of candidate rows given as columns (their dunning ``state`` from
        :func:`~training.features.dunning_state.state_of_rows`)."""
        matrix = as_event_matrix(features)
        pos = matrix.positions(event_ids)
        columns = {
            **state,
            **matrix.time_columns(pos, ns),
            "template": template,
            "channel": channel,
            "channel_click_rate": matrix.channel_click_rate(pos, channel),
        }
        p = np.zeros(len(event_ids))
        retry = kind == "retry"
        n_retry = int(np.count_nonzero(retry))
        parts: tuple[tuple[CalibratedModel | None, slice | np.ndarray, int], ...]
        if retry[:n_retry].all():  # the retries first (whole schedules' rows): views, no gathers
            parts = (
                (self.models.retry, slice(0, n_retry), n_retry),
                (self.models.message, slice(n_retry, None), len(retry) - n_retry),
            )
        else:
            parts = (
                (self.models.retry, retry, n_retry),
                (self.models.message, ~retry, len(retry) - n_retry),
            )
        for model, rows, size in parts:
            if size:
                if model is None:  # a model trained without messages is given no templates
                    raise ValueError("message rows to score, but no message model was trained")
                part = {name: values[rows] for name, values in columns.items()}
                p[rows] = self.predict(model, matrix, pos[rows], part)
        return p

    def recovery_probability(
        self,
        keys: pd.DataFrame,
        timeline: pd.DataFrame,
        p_self: pd.Series,
        p: pd.Series,
    ) -> pd.Series:
        """Expected recovery per schedule key, from candidate probabilities ``p``."""
        key_index = pd.Index(keys["key"].to_numpy())
        owner = key_index.get_indexer(timeline.loc[p.index, "key"].to_numpy())
        survival = np.log1p(-np.clip(p.to_numpy(), 0, 1 - 1e-9))
        log_survival = np.bincount(owner, weights=survival, minlength=len(key_index))
        unprompted = p_self.reindex(keys["event_id"].to_numpy()).fillna(0.0).to_numpy()
        return pd.Series(1.0 - (1.0 - unprompted) * np.exp(log_survival), index=key_index)


class ScoredRows:
    """Probabilities of candidate rows already scored within one decision call, known by
    the rows' whole model input.

    The message pruning scores each schedule with one message left out: the rows before
    that message are those of the whole schedule, and an event where nothing was dropped
    has the same schedules again in the next round (and in the final scoring, unless
    the exploration moved its retries). A row's probability depends only on its input
    (the event, time, kind, template, channel and dunning state), so such rows are
    looked up instead of scored again, with the same figures to the bit. Rows are found
    by a hash of that input and then compared in full: a hash collision is scored."""

    def __init__(self) -> None:
        self._codes: dict[object, int] = {}  # kinds, templates, channels
        self._index: pd.Index | None = None  # made on the first rows kept (a lone request: never)
        self._keys = np.zeros((0, 0), dtype=np.uint64)
        self._p = np.zeros(0)

    def probabilities(
        self,
        key: np.ndarray,
        score: Callable[[np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """The probability of each row of ``key`` (one row of :meth:`key` per candidate):
        those kept, and ``score(rows)`` of the others (each distinct input once)."""
        hashes = _row_hashes(key)
        p = np.empty(len(key))
        index = self._index
        found = index.get_indexer(hashes) if index is not None else np.full(len(key), -1)
        hit = found >= 0
        if hit.any():
            hit[hit] = (self._keys[found[hit]] == key[hit]).all(axis=1)
            p[hit] = self._p[found[hit]]
        missing = np.flatnonzero(~hit)
        if len(missing) == 0:
            return p
        codes, uniques = pd.factorize(hashes[missing])
        first = np.empty(len(uniques), dtype=np.int64)
        first[codes[::-1]] = np.arange(len(codes))[::-1]  # each hash's first row
        rows = missing[first]
        if not (key[rows][codes] == key[missing]).all():  # a collision: score them all
            p[missing] = score(missing)
            return p
        scored = score(rows)
        p[missing] = scored[codes]
        if index is None:
            new = np.ones(len(uniques), dtype=bool)
            self._index = pd.Index(uniques)
        else:
            new = ~pd.Index(uniques).isin(index)  # (a collision with a kept row)
            self._index = index.append(pd.Index(uniques[new]))
        kept = key[rows][new]
        self._keys = np.concatenate([self._keys, kept]) if len(self._keys) else kept
        self._p = np.concatenate([self._p, scored[new]])
        return p

    def key(
        self,
        pos: np.ndarray,
        ns: np.ndarray,
        kind: np.ndarray,
        template: np.ndarray,
        channel: np.ndarray,
        state: dict[str, np.ndarray],
    ) -> np.ndarray:
        """The rows' whole model input as integers (floats by their bits), one row each:
        the event's row in the call's features, time, kind, template, channel, state."""
        columns = [
            np.asarray(pos, dtype=np.int64).view(np.uint64),
            np.asarray(ns, dtype=np.int64).view(np.uint64),
            *(self._code(values) for values in (kind, template, channel)),
            *(
                np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
                for values in state.values()
            ),
        ]
        return np.column_stack(columns)

    def _code(self, values: np.ndarray) -> np.ndarray:
        """Codes of labels that stay the same for the whole call (missing: -1)."""
        codes, uniques = pd.factorize(np.asarray(values, dtype=object))
        table = [self._codes.setdefault(label, len(self._codes)) for label in uniques]
        return np.array([*table, -1], dtype=np.int64)[codes].view(np.uint64)


def _row_hashes(key: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of ``key`` (uint64 columns), FNV-1a style by column."""
    hashes = np.full(len(key), np.uint64(0xCBF29CE484222325))
    prime = np.uint64(0x100000001B3)
    for column in key.T:
        hashes = (hashes ^ column) * prime
        hashes ^= hashes >> np.uint64(29)
    return hashes

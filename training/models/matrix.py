"""Model input matrices built straight from numpy columns.

Training assembles named DataFrames (:mod:`training.features.frames`) and encodes them;
the policy scores hundreds of candidates per decision in several small rounds, where
building those frames costs far more than the model. Here the event features of one
decision call are encoded once per model (:class:`EventMatrix`), and each round only fills
the candidate columns (dunning state, candidate time, template and channel) of a float
matrix in the model's column order. The values are those of the frames path, column for
column (``tests/features/test_matrix.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import NamedTuple

import numpy as np
import pandas as pd

from training.core.localtime import utc_offsets
from training.features.calendar import calendar_arrays, per_distinct_instant
from training.features.frames import (
    CONTEXT_COLUMNS,
    HOUR_RESPONSE_FEATURES,
    HOUR_RESPONSE_INPUTS,
    time_columns,
)
from training.features.time_table import EventTimeTable
from training.models.calibrated import CalibratedModel, category_codes
from training.models.pair_rates import FittedPairRate


class Labels(NamedTuple):
    """A per-row category column as codes into a few distinct labels (the column is
    ``labels[codes]``): the message search's templates and channels, each label encoded
    and its pair rates looked up once, not every row every model call."""

    codes: np.ndarray
    labels: np.ndarray

    def values(self) -> np.ndarray:
        return self.labels[self.codes]


TIME_TABLE_INPUTS = (
    "cust_pay_day_of_month",
    "cust_pay_weekday",
    "cust_active_hour",
    *HOUR_RESPONSE_INPUTS,
)
"""The event columns the candidate-time features read."""

RowColumns = Mapping[str, "np.ndarray | Labels"]
"""Per-row model columns by name: arrays, or category labels as :class:`Labels`."""


@lru_cache(maxsize=64)
def _split(
    features: tuple[str, ...], event_columns: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of a model's columns that come from the event features, and the others."""
    from_event = np.array([name in event_columns for name in features], dtype=bool)
    return np.flatnonzero(from_event), np.flatnonzero(~from_event)


@dataclass(frozen=True)
class _Layout:
    """How a model's matrix is assembled from one set of event columns (worked out once
    per model and kept: every decision call needs it several times)."""

    event_names: tuple[str, ...]  # the model's event-level columns, in its order
    event_categories: tuple[tuple | None, ...]  # training categories of each (None: numeric)
    other_names: tuple[str, ...]  # the per-row columns, in the model's order
    other_categories: tuple[tuple | None, ...]  # (as tuples: the encodings' cache keys)
    order: np.ndarray | None  # matrix columns (events, then others) to the model's order
    event_positions: np.ndarray  # the event columns' places in the model's order
    other_positions: tuple[int, ...]  # and the per-row columns'
    hour_response: bool  # whether the model reads an hour-response column (or a rate does)
    row_categories: tuple[tuple[str, tuple], ...] = ()  # the per-row category columns


def _as_key(categories: list | None) -> tuple | None:
    """A model's category list as a tuple (a dict key), None for a numeric column."""
    return None if categories is None else tuple(categories)


_LAYOUTS: dict[tuple[int, tuple[str, ...]], tuple[CalibratedModel, _Layout]] = {}


def _layout(model: CalibratedModel, event_columns: tuple[str, ...]) -> _Layout:
    key = (id(model), event_columns)
    kept = _LAYOUTS.get(key)
    if kept is None or kept[0] is not model:  # the model is kept, so its id is not reused
        event_pos, other_pos = _split(tuple(model.features), event_columns)
        events = tuple(model.features[i] for i in event_pos)
        others = tuple(model.features[j] for j in other_pos)
        other_categories = tuple(_as_key(model.categories.get(name)) for name in others)
        layout = np.concatenate([event_pos, other_pos])
        kept = (
            model,
            _Layout(
                events,
                tuple(_as_key(model.categories.get(name)) for name in events),
                others,
                other_categories,
                None if (layout == np.arange(len(layout))).all() else np.argsort(layout),
                event_pos,
                tuple(int(j) for j in other_pos),
                reads_hour_response(model),
                tuple(
                    (name, categories)
                    for name, categories in zip(others, other_categories, strict=True)
                    if categories is not None
                ),
            ),
        )
        if len(_LAYOUTS) > 256:
            _LAYOUTS.clear()
        _LAYOUTS[key] = kept
    return kept[1]


def reads_hour_response(model: CalibratedModel) -> bool:
    """Whether ``model`` reads a column of :data:`HOUR_RESPONSE_FEATURES`, as an input or
    through a pair rate (the others' time columns are worked out without them)."""
    rates = getattr(model, "rates", ())  # artifacts saved before rates existed
    read = {*model.features, *(side for r in rates for side in (r.spec.left, r.spec.right))}
    return not read.isdisjoint(HOUR_RESPONSE_FEATURES)


class EventMatrix:
    """The event features of one decision call (one row per event id), encoded per model
    once.

    Built from a features frame (index: event_id) or straight from its columns
    (``from_columns``: the policy's path, where building a frame of a few dozen
    one-row columns costs more than the search's model calls); the frame is then made
    only when ``features`` is read."""

    def __init__(self, features: pd.DataFrame) -> None:
        self._frame: pd.DataFrame | None = features
        self._columns: dict[str, np.ndarray] = {}
        self._names = tuple(features.columns)
        self.ids = features.index.to_numpy()
        self._setup()

    @classmethod
    def from_columns(cls, ids: np.ndarray, columns: dict[str, np.ndarray]) -> EventMatrix:
        """The matrix of events ``ids`` given their feature columns (one value per id)."""
        matrix = cls.__new__(cls)
        matrix._frame = None
        matrix._columns = dict(columns)
        matrix._names = tuple(columns)
        matrix.ids = np.asarray(ids)
        matrix._setup()
        return matrix

    def _setup(self) -> None:
        self._index: pd.Index | None = None
        self._encoded: dict[str, np.ndarray] = {}
        self._widened: dict[str, np.ndarray] = {}
        self._codes: dict[tuple[str, tuple | None], np.ndarray] = {}
        self._floats: dict[str, np.ndarray] = {}
        self._labels: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._label_codes: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._rate_tables: dict[tuple, tuple[FittedPairRate, np.ndarray]] = {}
        self._event_names = tuple(c for c in self._names if c not in CONTEXT_COLUMNS)
        self._zone: str | None | bool = False  # the one time zone of every event (unknown yet)
        self._zone_codes: np.ndarray | None = None
        self._zone_uniques: np.ndarray | None = None
        self._table: EventTimeTable | None = None
        self._layouts: dict[int, tuple[CalibratedModel, _Layout]] = {}

    @property
    def features(self) -> pd.DataFrame:
        """The event features as a frame (index: event_id)."""
        if self._frame is None:
            self._frame = pd.DataFrame(self._columns, index=self.ids, copy=False)
        return self._frame

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, event_ids: np.ndarray) -> np.ndarray:
        """Row of each event id (all must be known)."""
        if len(self.ids) == 1:  # one event (a lone request): no index to build
            pos = np.where(np.asarray(event_ids) == self.ids[0], 0, -1)
        else:
            if self._index is None:
                self._index = pd.Index(self.ids)
            pos = self._index.get_indexer(event_ids)
        if len(pos) and pos.min() < 0:
            raise KeyError("event ids without event features")
        return pos

    def column(self, name: str) -> np.ndarray:
        if name not in self._columns:
            assert self._frame is not None
            self._columns[name] = self._frame[name].to_numpy()
        return self._columns[name]

    def _float(self, name: str) -> np.ndarray:
        if name not in self._floats:
            self._floats[name] = self.column(name).astype(float)
        return self._floats[name]

    def _event_column(self, name: str, categories: tuple | None) -> np.ndarray:
        """An event column encoded (each numeric column and category list once)."""
        key = (name, categories)
        kept = self._codes.get(key)
        if kept is None:
            kept = self._codes[key] = _encode_column(self.column(name), categories)
        return kept

    def _layout(self, model: CalibratedModel) -> _Layout:
        """The model's layout over these event columns (kept per model for the call)."""
        kept = self._layouts.get(id(model))
        if kept is None or kept[0] is not model:
            kept = self._layouts[id(model)] = (model, _layout(model, self._event_names))
        return kept[1]

    def encoded(self, model: CalibratedModel) -> np.ndarray:
        """The model's event-level columns of every event, encoded as in training."""
        if model.name not in self._encoded:
            layout = self._layout(model)
            pairs = zip(layout.event_names, layout.event_categories, strict=True)
            columns = [self._event_column(name, categories) for name, categories in pairs]
            n = len(self.ids)
            # one concatenation (np.column_stack makes each column 2-D first: ~1 µs each)
            stacked = np.concatenate(columns).reshape(len(columns), n) if columns else None
            self._encoded[model.name] = (
                np.ascontiguousarray(stacked.T) if stacked is not None else np.empty((n, 0))
            )
        return self._encoded[model.name]

    def widened(self, model: CalibratedModel) -> np.ndarray:
        """:meth:`encoded` laid out at the model's full width: each event column in its
        place, the per-row columns' places zero (a gather of its rows is then the model
        matrix but for those, in one copy); once per model and call."""
        if model.name not in self._widened:
            layout = self._layout(model)
            events = self.encoded(model)
            wide = np.zeros((len(events), len(layout.event_names) + len(layout.other_names)))
            wide[:, layout.event_positions] = events
            self._widened[model.name] = wide
        return self._widened[model.name]

    def model_matrix(
        self, model: CalibratedModel, pos: np.ndarray, columns: RowColumns
    ) -> np.ndarray:
        """Matrix for ``model``: event columns of the rows' events ``pos`` plus the given
        per-row ``columns`` (a model column in neither is missing, NaN)."""
        layout = self._layout(model)
        if layout.row_categories:
            columns = _labelled(columns, layout.row_categories)
        derived = self._rate_columns(model, pos, columns)
        if derived:
            columns = {**columns, **derived}
        n = len(pos)
        if len(self.ids) == 1 and layout.order is None:
            return self._one_event_matrix(model, layout, columns, n)
        # the rows' events gathered at the model's width (one C-ordered copy), then each
        # per-row column written into its place: a third of the CPU of stacking the
        # per-row columns and concatenating the two blocks (a transposed read) on a
        # batch's grids, and no reordering copy when the model interleaves them
        matrix = self.widened(model).take(pos, axis=0)
        for name, categories, position in zip(
            layout.other_names, layout.other_categories, layout.other_positions, strict=True
        ):
            values = columns.get(name)
            matrix[:, position] = (
                np.nan if values is None else self._row_values(values, categories, n)
            )
        return matrix

    def _one_event_matrix(
        self, model: CalibratedModel, layout: _Layout, columns: RowColumns, n: int
    ) -> np.ndarray:
        """:meth:`model_matrix` of one event's rows (a lone request): its row written
        into every row of the matrix."""
        events = self.encoded(model)
        width = events.shape[1]
        # (a broadcast assignment: np.broadcast_to and a concatenation cost ~6 µs more)
        matrix = np.empty((n, width + len(layout.other_names)))
        matrix[:, :width] = events
        if layout.other_names:
            parts: list[np.ndarray] = []
            missing = None
            for name, categories in zip(layout.other_names, layout.other_categories, strict=True):
                values = columns.get(name)
                if (
                    categories is None
                    and type(values) is np.ndarray
                    and values.dtype is _FLOAT64
                    and len(values) == n
                    and values.ndim == 1
                ):
                    parts.append(values)  # (as in _row_values, without the call: most columns)
                elif values is None:
                    if missing is None:
                        missing = np.full(n, np.nan)
                    parts.append(missing)
                else:
                    parts.append(self._row_values(values, categories, n))
            # one copy of the rows' columns, concatenated (np.array of a list of arrays
            # makes a new array object per part: ~30 a call) and written transposed
            matrix[:, width:] = np.concatenate(parts).reshape(len(parts), n).T
        return matrix

    def _row_values(
        self, values: np.ndarray | Labels, categories: tuple | None, n: int
    ) -> np.ndarray:
        """A per-row column encoded as in training (``n`` values)."""
        if (
            categories is None
            and type(values) is np.ndarray
            and values.dtype is _FLOAT64
            and len(values) == n
            and values.ndim == 1
        ):
            # the state and calendar columns: floats already (most columns; the
            # checks below cost ~1 µs a column, a lone decision makes ~180)
            return values
        if isinstance(values, Labels):
            return self._encoded_labels(values.labels, categories)[values.codes]
        if (
            categories is None
            and isinstance(values, np.ndarray)
            and values.dtype == np.float64
            and values.shape == (n,)
        ):
            return values  # the state and calendar columns: floats already
        encoded = _by_labels(partial(_encode_column, categories=categories), values)
        return np.broadcast_to(np.asarray(encoded, dtype=np.float64), (n,))

    def _encoded_labels(self, labels: np.ndarray, categories: tuple | None) -> np.ndarray:
        """:class:`Labels` encoded, once per labels array and category list per call
        (the search passes the same template and channel labels every round)."""
        key = (id(labels), categories)
        # labels made once and never written (the search's templates and channels, a
        # model's categories): encoded once per process, not once per call
        memo = _KEPT_LABEL_CODES if _never_written(labels) else self._label_codes
        kept = memo.get(key)
        if kept is None or kept[0] is not labels:
            if len(memo) > 256:
                memo.clear()
            kept = memo[key] = (labels, _encode_column(labels, categories))
        return kept[1]

    def _rate_columns(
        self, model: CalibratedModel, pos: np.ndarray, columns: RowColumns
    ) -> dict[str, np.ndarray]:
        """The model's pair-rate inputs of the rows (those ``columns`` lacks).

        A rate pairs an event column with a per-row one (a decline category with a
        template or a count of earlier messages), and both hold few distinct labels: the
        rate of every pair of labels is looked up once per call of this matrix and kept,
        and each model call only gathers from that small table (a lookup converts every
        row to text, ~50 µs a call on a lone request's few dozen rows)."""
        out = {}
        for rate in getattr(model, "rates", ()):  # artifacts saved before rates existed
            if rate.name not in columns:
                out[rate.name] = self._rate_column(rate, pos, columns)
        return out

    def _rate_column(
        self, rate: FittedPairRate, pos: np.ndarray, columns: RowColumns
    ) -> np.ndarray:
        left, right = rate.spec.left, rate.spec.right
        per_row = [name for name in (left, right) if name in columns]
        coded = None
        if len(per_row) == 1:
            event_name = right if per_row[0] == left else left
            given = columns[per_row[0]]
            coded = tuple(given) if isinstance(given, Labels) else _row_codes(np.asarray(given))
        if coded is None:  # both sides per row or per event, or labels of mixed types
            return _by_labels(
                rate.lookup, *(_row_values(columns, n, self, pos) for n in (left, right))
            )
        codes, labels = coded
        event_codes, event_labels = self._event_labels(event_name)
        labels_key = _COUNT_LABELS_KEY if labels is _COUNT_LABELS else _labels_key(labels)
        key = (id(rate), per_row[0] == left, labels_key)
        kept = self._rate_tables.get(key)
        if kept is None:  # every pair of labels, looked up once
            table = _pair_table(rate, per_row[0] == left, labels, event_labels)
            kept = self._rate_tables[key] = (rate, table)  # the rate kept: its id stays unique
        if len(event_codes) == 1:  # one event (a lone request): its table column
            return kept[1][:, event_codes[0]][codes]
        return kept[1][codes, event_codes[pos]]

    def _event_labels(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Each event's code in the distinct labels of event column ``name`` (strings,
        missing as None); the events themselves when the column holds other values."""
        if name not in self._labels:
            values = self.column(name)
            coded = _row_codes(np.asarray(values, dtype=object)) if values.dtype == object else None
            if coded is None:
                coded = (np.arange(len(values)), values)
            self._labels[name] = coded
        return self._labels[name]

    def zone_codes(self) -> np.ndarray:
        """Each event's time zone as an integer code (equal codes: equal zones; -1:
        missing)."""
        if self._zone_codes is None:
            self._zone_names()
        assert self._zone_codes is not None
        return self._zone_codes

    def one_zone(self) -> str | None:
        """The time zone of every event when they share one (a lone request), else None."""
        if self._zone is False:
            zones = self.column("timezone")
            same = len(zones) > 0 and isinstance(zones[0], str) and (zones == zones[0]).all()
            self._zone = str(zones[0]) if same else None
        return self._zone  # type: ignore[return-value]

    def time_columns(
        self, pos: np.ndarray, utc_ns: np.ndarray, model: CalibratedModel | None = None
    ) -> dict[str, np.ndarray]:
        """Candidate-time features of instants ``utc_ns`` for the events at ``pos``; for
        ``model`` (when given) without the hour response if it reads none (the retry and
        self-cure models: five cosines and sines a row, unused)."""
        zone = self.one_zone()
        if len(self.ids) == 1 and zone is not None:  # a lone request: from its tables
            columns = self._time_table(zone).columns(utc_ns)
            if columns is not None:
                return columns
        codes = None if zone is not None else self.zone_codes()[pos]

        def calendar(rows: np.ndarray) -> tuple[np.ndarray, ...]:
            if zone is not None:
                return calendar_arrays(utc_ns[rows], zone)
            assert codes is not None
            return calendar_arrays(utc_ns[rows], None, partial(self._zone_offsets, codes[rows]))

        hour, weekday, day, to_month_end = per_distinct_instant(utc_ns, codes, calendar)
        return time_columns(
            hour,
            weekday,
            day,
            to_month_end,
            self._float("cust_pay_day_of_month")[pos],
            self._float("cust_pay_weekday")[pos],
            self._float("cust_active_hour")[pos],
            self._hour_profile(pos) if model is None or self._layout(model).hour_response else None,
        )

    def _hour_profile(self, pos: np.ndarray) -> dict[str, np.ndarray]:
        """The hour-response inputs of the events at ``pos``."""
        return {name: self._float(name)[pos] for name in HOUR_RESPONSE_INPUTS}

    def _zone_offsets(self, codes: np.ndarray, utc_ns: np.ndarray) -> np.ndarray:
        """UTC offsets of instants ``utc_ns`` (none NaT) in the zones of codes ``codes``
        (:meth:`zone_codes`): one lookup per zone, as :func:`utc_offsets` makes per zone
        name, without comparing, hashing and gathering the names of every row."""
        names = self._zone_names()
        out = np.zeros(len(utc_ns), dtype=np.int64)
        if len(codes) == 0:
            return out
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(-1, len(names) + 1))
        for k in np.flatnonzero(np.diff(bounds)).tolist():
            rows = order[bounds[k] : bounds[k + 1]]
            name = None if k == 0 else names[k - 1]  # code -1: missing, read as UTC
            out[rows] = utc_offsets(utc_ns[rows], name)
        return out

    def _zone_names(self) -> np.ndarray:
        """The distinct zone names, in the order of :meth:`zone_codes`."""
        if self._zone_uniques is None:
            self._zone_codes, self._zone_uniques = pd.factorize(self.column("timezone"))
        return self._zone_uniques

    def _time_table(self, zone: str) -> EventTimeTable:
        """The one event's time features by local day and minute, built on first use."""
        if self._table is None:
            event = {name: self._float(name) for name in TIME_TABLE_INPUTS}
            self._table = EventTimeTable(zone, event)
        return self._table

    def channel_click_rate(self, pos: np.ndarray, channel: np.ndarray) -> np.ndarray:
        return np.where(
            channel == "sms",
            self._float("cust_sms_click_rate")[pos],
            self._float("cust_email_click_rate")[pos],
        )

    def channel_click_rates(self, pos: np.ndarray, channels: Iterable[str]) -> np.ndarray:
        """:meth:`channel_click_rate` of every row in ``pos`` by each channel in turn (a
        row per channel): the same values, each column read once, without a channel
        array and a comparison per channel (the message search's context, per call)."""
        sms = self._float("cust_sms_click_rate")[pos]
        email = self._float("cust_email_click_rate")[pos]
        return np.array([sms if channel == "sms" else email for channel in channels])


_KEPT_LABEL_CODES: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
"""The codes of labels that are never written (:func:`_never_written`), by the labels'
identity (kept alive here, so an id is not reused) and category list, across calls."""


def _never_written(labels: np.ndarray) -> bool:
    """Whether ``labels`` owns its values and is read-only (made once and kept: the
    message search's templates and channels, :func:`as_labels`' categories)."""
    return labels.base is None and not labels.flags.writeable


def _labelled(columns: RowColumns, row_categories: tuple[tuple[str, tuple], ...]) -> RowColumns:
    """``columns`` with each per-row category column given as strings (the whole-schedule
    scoring's templates and channels) as :class:`Labels` over the model's categories,
    when every value is one of them: the labels are then encoded, and their pair rates
    looked up, once per call's matrix (:meth:`EventMatrix._encoded_labels`), where each
    model call converted, searched and factorized the strings (~0.35 M instructions a
    lone decision). ``labels[codes]`` equals the column, so every value is the same.
    From :data:`LABEL_ROWS` rows (a batch's), the general path's encoding by distinct
    label costs less than the strings' binary search (Python comparisons)."""
    out = None
    for name, categories in row_categories:
        values = columns.get(name)
        if type(values) is np.ndarray and values.dtype == object and 0 < len(values) < LABEL_ROWS:
            labels = as_labels(values, categories)
            if labels is not None:
                if out is None:
                    out = dict(columns)
                out[name] = labels
    return columns if out is None else out


@lru_cache(maxsize=64)
def _category_labels(categories: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A model's categories (all strings) as an object array, in the training order, its
    labels sorted (by Python's string order) and the position of each sorted one in it;
    None when some category is no string. Kept: never written."""
    if not categories or not all(type(c) is str for c in categories):
        return None
    labels = np.array(categories, dtype=object)
    order = np.array(sorted(range(len(labels)), key=lambda i: labels[i]), dtype=np.intp)
    ordered = labels[order]
    for array in (labels, order, ordered):
        array.flags.writeable = False
    return labels, ordered, order


def as_labels(values: np.ndarray, categories: tuple) -> Labels | None:
    """``values`` (an object array) as :class:`Labels` over ``categories``, when every
    value is a string among them (None otherwise: a missing value, another type or an
    unseen label takes the general path, which encodes each as training does)."""
    kept = _category_labels(categories)
    if kept is None:
        return None
    labels, ordered, order = kept
    try:
        at = np.searchsorted(ordered, values)  # (Python's comparisons: strings only)
    except TypeError:
        return None
    np.minimum(at, len(ordered) - 1, out=at)
    if not (ordered[at] == values).all():
        return None
    return Labels(order[at], labels)


def _encode_column(values: np.ndarray, categories: Sequence[str] | None) -> np.ndarray:
    """As :func:`~training.models.calibrated.encode_matrix` encodes a column."""
    if categories is not None:
        return category_codes(values, categories)
    values = np.asarray(values)
    if values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False)
    return pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)  # objects, NA


_FLOAT64 = np.dtype(np.float64)
"""Float64 as numpy's own dtype object (``dtype is _FLOAT64``: a pointer comparison;
another float64 dtype object, e.g. a byte-swapped one, takes the general path)."""

LABEL_ROWS = 2_000
"""Fewest rows :func:`_by_labels` encodes by distinct label (hashing the labels costs
more than it saves on a lone request's few hundred rows)."""


COUNT_CODES = 8
"""Per-row float columns whose values are all whole numbers below this (the dunning
state's counts) are their own codes: no hashing."""

_COUNT_LABELS = np.arange(COUNT_CODES, dtype=np.float64)
_COUNT_LABELS.flags.writeable = False  # shared by every call: never written
_COUNT_LABELS_KEY = (_COUNT_LABELS.dtype.str, _COUNT_LABELS.tobytes())
"""The labels of count columns' codes, and their key (as :func:`_labels_key` makes it),
made once rather than on every model call."""


KEPT_EVENT_LABELS = 64
"""Most distinct event labels (a batch's decline categories) whose rate columns are kept
across calls in :data:`_PAIR_COLUMNS`; more (a numeric event column) are looked up."""

_PAIR_COLUMNS: dict[tuple, tuple[FittedPairRate, dict]] = {}
"""Per pair rate and set of per-row labels: the rates of each event label seen, kept
across decision calls (a lone request's table is then a few dictionary reads)."""


def _pair_table(
    rate: FittedPairRate, row_is_left: bool, labels: np.ndarray, event_labels: np.ndarray
) -> np.ndarray:
    """The rate of every (per-row label, event label) pair, labels x event labels."""

    def lookup(event_side: np.ndarray) -> np.ndarray:
        rows = np.repeat(labels, len(event_side))
        events = np.tile(event_side, len(labels))
        pair = (rows, events) if row_is_left else (events, rows)
        return rate.lookup(*pair).reshape(len(labels), len(event_side))

    if len(event_labels) > KEPT_EVENT_LABELS or event_labels.dtype != object:
        return lookup(event_labels)
    if len(_PAIR_COLUMNS) > 256:
        _PAIR_COLUMNS.clear()
    labels_key = _COUNT_LABELS_KEY if labels is _COUNT_LABELS else _labels_key(labels)
    key = (id(rate), row_is_left, labels_key)
    kept = _PAIR_COLUMNS.get(key)
    if kept is None or kept[0] is not rate:  # (the rate kept: its id is not reused)
        kept = _PAIR_COLUMNS[key] = (rate, {})
    columns = kept[1]
    missing = [label for label in event_labels.tolist() if label not in columns]
    if missing:
        found = lookup(np.array(missing, dtype=object))
        for j, label in enumerate(missing):
            columns[label] = found[:, j]
    return np.column_stack([columns[label] for label in event_labels.tolist()])


def _row_values(columns: RowColumns, name: str, matrix: EventMatrix, pos: np.ndarray) -> np.ndarray:
    """Column ``name`` of the rows: given per row, or the rows' events' values."""
    if name not in columns:
        return matrix.column(name)[pos]
    values = columns[name]
    return values.values() if isinstance(values, Labels) else values


def _labels_key(labels: np.ndarray) -> tuple:
    """Labels as a dict key (floats by their bits: NaN equals NaN)."""
    if labels.dtype == object:
        return ("labels", *labels.tolist())
    return (labels.dtype.str, labels.tobytes())


def _row_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Each row's code in a few distinct labels (``labels[codes]`` equals ``values`` as a
    pair rate reads them): counts as themselves, strings (and missing, as None) by
    first appearance; None for columns of other values."""
    if values.dtype.kind == "f":
        if len(values) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        if values.min() >= 0 and values.max() < COUNT_CODES:  # (False with NaN)
            counts = values.astype(np.int64)
            if (counts == values).all():
                return counts, _COUNT_LABELS
        labels, codes = np.unique(values, return_inverse=True)
        return codes.reshape(-1), labels
    if values.dtype != object:
        return None
    if len(values) == 1 and isinstance(values[0], str):  # a lone request's event column
        return np.zeros(1, dtype=np.intp), np.array([values[0], None], dtype=object)
    codes, uniques = pd.factorize(values)
    if not all(isinstance(label, str) for label in uniques):
        return None
    labels = np.array([*uniques, None], dtype=object)
    return codes % len(labels), labels


def _by_labels(function: Callable[..., np.ndarray], *columns: np.ndarray) -> np.ndarray:
    """``function(*columns)`` (element-wise over category labels) computed once per
    distinct combination of labels and gathered: the search's candidate columns hold a
    few templates and channels over thousands of rows, and encoding a label costs a
    string conversion and a binary search. Only columns of strings and missing values
    take this path (distinct strings are never hashed together; every missing value
    becomes None, which encodes as missing too); any other column is passed as it is."""
    codes, labels = [], []
    for values in columns:
        values = np.asarray(values)
        if values.dtype != object or len(values) < LABEL_ROWS:
            return function(*columns)
        code, uniques = pd.factorize(values)
        if not all(isinstance(label, str) for label in uniques):
            return function(*columns)
        codes.append(code)
        labels.append(np.array([*uniques, None], dtype=object))  # code -1: missing
    combined = np.zeros(len(codes[0]), dtype=np.int64)
    for code, label in zip(codes, labels, strict=True):
        combined = combined * len(label) + code % len(label)
    distinct, inverse = np.unique(combined, return_inverse=True)
    parts = []
    for label in reversed(labels):  # undo the mixed radix, last column first
        parts.append(label[distinct % len(label)])
        distinct = distinct // len(label)
    return function(*reversed(parts))[inverse]


def as_event_matrix(features: pd.DataFrame | EventMatrix) -> EventMatrix:
    """``features`` as an :class:`EventMatrix` (callers that keep one reuse its encodings)."""
    return features if isinstance(features, EventMatrix) else EventMatrix(features)

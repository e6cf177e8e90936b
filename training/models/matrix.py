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

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from training.features.calendar import calendar_arrays
from training.features.frames import CONTEXT_COLUMNS, time_columns
from training.models.calibrated import CalibratedModel, category_codes


@lru_cache(maxsize=64)
def _split(
    features: tuple[str, ...], event_columns: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of a model's columns that come from the event features, and the others."""
    from_event = np.array([name in event_columns for name in features], dtype=bool)
    return np.flatnonzero(from_event), np.flatnonzero(~from_event)


@dataclass
class EventMatrix:
    """The event features of one decision call (index: event_id), encoded per model once."""

    features: pd.DataFrame
    _encoded: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    _columns: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def positions(self, event_ids: np.ndarray) -> np.ndarray:
        """Row of each event id (all must be known)."""
        pos = self.features.index.get_indexer(event_ids)
        if len(pos) and pos.min() < 0:
            raise KeyError("event ids without event features")
        return pos

    def column(self, name: str) -> np.ndarray:
        if name not in self._columns:
            self._columns[name] = self.features[name].to_numpy()
        return self._columns[name]

    def encoded(self, model: CalibratedModel) -> np.ndarray:
        """The model's event-level columns of every event, encoded as in training."""
        if model.name not in self._encoded:
            columns = [
                _encode_column(self.column(name), model.categories.get(name))
                for name in self._event_names(model)
            ]
            n = len(self.features)
            self._encoded[model.name] = np.stack(columns, axis=1) if columns else np.empty((n, 0))
        return self._encoded[model.name]

    def _event_names(self, model: CalibratedModel) -> list[str]:
        event_pos, _ = _split(tuple(model.features), self._event_columns())
        return [model.features[i] for i in event_pos]

    def _event_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.features.columns if c not in CONTEXT_COLUMNS)

    def model_matrix(
        self, model: CalibratedModel, pos: np.ndarray, columns: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Matrix for ``model``: event columns of the rows' events ``pos`` plus the given
        per-row ``columns`` (a model column in neither is missing, NaN)."""
        derived = model.rate_columns(
            lambda name: columns[name] if name in columns else self.column(name)[pos]
        )
        if derived:
            columns = {**columns, **derived}
        event_pos, other_pos = _split(tuple(model.features), self._event_columns())
        n = len(pos)
        others = [
            np.full(n, np.nan) if columns.get(name) is None
            else _encode_column(columns[name], model.categories.get(name))
            for name in (model.features[j] for j in other_pos)
        ]  # fmt: skip
        # whole blocks, not column by column: strided column writes into a row-major
        # matrix cost four times as much on the search's 350,000-row grids
        blocks = [
            self.encoded(model)[pos],
            np.stack(others, axis=1) if others else np.empty((n, 0)),
        ]
        matrix = np.concatenate(blocks, axis=1)
        layout = np.concatenate([event_pos, other_pos])
        if (layout != np.arange(len(layout))).any():  # the model's columns are interleaved
            matrix = matrix[:, np.argsort(layout)]
        return matrix

    def time_columns(self, pos: np.ndarray, utc_ns: np.ndarray) -> dict[str, np.ndarray]:
        """Candidate-time features of instants ``utc_ns`` for the events at ``pos``."""
        zones = self.column("timezone")[pos]
        hour, weekday, day, to_month_end = calendar_arrays(utc_ns, zones)
        return time_columns(
            hour,
            weekday,
            day,
            to_month_end,
            self.column("cust_pay_day_of_month")[pos].astype(float),
            self.column("cust_pay_weekday")[pos].astype(float),
            self.column("cust_active_hour")[pos].astype(float),
        )

    def channel_click_rate(self, pos: np.ndarray, channel: np.ndarray) -> np.ndarray:
        return np.where(
            channel == "sms",
            self.column("cust_sms_click_rate")[pos].astype(float),
            self.column("cust_email_click_rate")[pos].astype(float),
        )


def _encode_column(values: np.ndarray, categories: list[str] | None) -> np.ndarray:
    """As :func:`~training.models.calibrated.encode_matrix` encodes a column."""
    if categories is not None:
        return category_codes(values, categories)
    values = np.asarray(values)
    if values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False)
    return pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)  # objects, NA


def as_event_matrix(features: pd.DataFrame | EventMatrix) -> EventMatrix:
    """``features`` as an :class:`EventMatrix` (callers that keep one reuse its encodings)."""
    return features if isinstance(features, EventMatrix) else EventMatrix(features)

"""Time inputs held inside the range the training rows cover at each dunning rank.

A history's logging policy places each retry (message) rank in a narrow band of offsets:
first retries on days 0 to 4, second ones on days 2 to 7, and so on. A tree scores a
first retry on day 10 through splits on ``hours_since_failure`` learned from the *later
ranks*, which are later and lower (they come after failed attempts), so it values
late candidates by another rank's decay: extrapolation the data never supported
(docs/evaluation.md, "Why the learned first retry comes on day 2"). Clipping each time
input to the range the training rows of the same rank cover makes a candidate beyond
it worth what the nearest supported offset is worth; its calendar inputs (payday, hour,
weekday) still move with the candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RankSupport:
    """Per rank (0, 1, ..., the last rank seen, which also covers later ones) the
    smallest and largest value of each clipped column among the training rows."""

    rank_position: int  # the rank column's position in the model's matrix
    positions: tuple[int, ...]  # the clipped columns' positions
    lower: np.ndarray  # (ranks, columns)
    upper: np.ndarray

    @classmethod
    def fit(
        cls, rows: pd.DataFrame, features: list[str], rank: str, columns: tuple[str, ...]
    ) -> RankSupport:
        """The range of ``columns`` per value of ``rank`` in ``rows`` (NaN ignored); the
        columns that are no input of the model (``features``) are left out."""
        columns = tuple(c for c in columns if c in features)
        ranks = rows[rank].to_numpy(dtype=float)
        if np.isnan(ranks).any():
            raise ValueError(f"support: the rank column {rank!r} has missing values")
        values = rows[list(columns)].astype(float)
        by_rank = values.groupby(ranks.astype(int))
        every = np.arange(int(ranks.max()) + 1 if len(ranks) else 1)
        lower = by_rank.min().reindex(every).ffill().bfill().to_numpy()
        upper = by_rank.max().reindex(every).ffill().bfill().to_numpy()
        # a column never observed: no bound
        lower, upper = np.nan_to_num(lower, nan=-np.inf), np.nan_to_num(upper, nan=np.inf)
        return cls(features.index(rank), tuple(features.index(c) for c in columns), lower, upper)

    def clip(self, matrix: np.ndarray, in_place: bool = False) -> np.ndarray:
        """``matrix`` (the model's encoded rows) with the time columns clipped to their
        rank's range: a copy, or (``in_place``: a matrix the caller owns) the matrix
        itself, clipped where it stands."""
        if len(matrix) == 0 or not self.positions:
            return matrix
        columns, lower, upper = self._plan()
        # the rank's bounds: NaN and below 0 as 0, above the last as the last (np.fmax
        # turns NaN into 0; np.clip of np.nan_to_num, without their ~20 µs a call: the
        # policy clips in every model call of its search)
        rank = np.fmax(matrix[:, self.rank_position], 0.0)
        at = np.minimum(rank, float(lower.shape[1] - 1)).astype(np.intp)
        out = matrix if in_place else matrix.copy()
        # np.clip written out (minimum of maximum: the same figures, NaN kept), on the
        # columns as rows (each column's bounds of every row gathered in one ``take``, a
        # row of its own: numpy's ufuncs on a strided 2-D block of a few dozen rows cost
        # ~4 µs a call when the bounds come as another strided block)
        clipped = out[:, columns].T  # a view when the columns are evenly spaced
        np.maximum(clipped, lower.take(at, axis=1), out=clipped)
        np.minimum(clipped, upper.take(at, axis=1), out=clipped)
        if not isinstance(columns, slice):  # a gather: written back
            out[:, columns] = clipped.T
        return out

    def _plan(self) -> tuple[slice | np.ndarray, np.ndarray, np.ndarray]:
        """The clipped columns as a slice when evenly spaced (a view, not a gather: the
        search's matrices are a few dozen rows, where numpy's fancy indexing is most of
        the cost), and the bounds as (columns, ranks); made on first use, never pickled."""
        kept = self.__dict__.get("_kept_plan")
        if kept is None:
            kept = (
                _as_slice(self.positions),
                np.ascontiguousarray(self.lower.T),
                np.ascontiguousarray(self.upper.T),
            )
            object.__setattr__(self, "_kept_plan", kept)
        return kept

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_kept_plan", None)
        return state


def _as_slice(positions: tuple[int, ...]) -> slice | np.ndarray:
    """``positions`` as a slice when they rise by one step, else as an index array."""
    steps = {b - a for a, b in zip(positions, positions[1:], strict=False)}
    if len(steps) <= 1 and (not steps or min(steps) > 0):
        step = steps.pop() if steps else 1
        return slice(positions[0], positions[-1] + 1, step)
    return np.array(positions, dtype=np.intp)

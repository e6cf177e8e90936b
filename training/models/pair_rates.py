"""Smoothed outcome rates of pairs of categories, as numeric model inputs.

A template that works for one decline reason and not for another (an "update your card"
message after an expired card, not after insufficient funds) is an interaction that
boosting on a rare template learns slowly: early stopping on a validation period ruled
by the common templates ends before the trees isolate a few hundred rows. The observed
rate of each (template, decline category) pair, shrunk towards the template's own rate
when the pair is rare, hands the model that interaction as one number. Training rows
get it out of fold (each fold's rows from the other folds' outcomes, never their own);
validation, test and live rows from all training rows.

The right column may be numeric and cut into buckets (``right_bins``): the dunning
state's counts or the local hour, so that e.g. the rate of first, second and third
messages per decline category, or of each country's hours of the day, is one input too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FOLDS = 5


@dataclass(frozen=True)
class PairRate:
    """Rate of the label for each (``left``, ``right``) pair, shrunk towards ``left``'s
    rate with the weight of ``smoothing`` rows; ``left``'s towards the overall rate.
    ``right_bins``: when given, ``right`` is numeric and its values count by the bucket
    they fall in (``np.digitize`` on these edges; missing values are a bucket of their own)."""

    name: str
    left: str
    right: str
    smoothing: float = 30.0
    right_bins: tuple[float, ...] = ()

    def right_labels(self, right: np.ndarray) -> np.ndarray:
        """The right column's values as the labels the rates are kept by."""
        if not self.right_bins:
            return _text(right)
        values = np.asarray(right, dtype=np.float64)
        bucket = np.digitize(values, self.right_bins)
        return np.where(np.isnan(values), "", bucket.astype(str))

    def fit(self, left: np.ndarray, right: np.ndarray, label: np.ndarray) -> FittedPairRate:
        frame = pd.DataFrame(
            {
                "l": _text(left),
                "r": self.right_labels(right),
                "y": np.asarray(label, dtype=float),
            }
        )
        prior = float(frame["y"].mean()) if len(frame) else 0.0
        by_left = frame.groupby("l")["y"].agg(["sum", "count"])
        left_rate = (by_left["sum"] + self.smoothing * prior) / (by_left["count"] + self.smoothing)
        by_pair = frame.groupby(["l", "r"])["y"].agg(["sum", "count"]).reset_index()
        left_labels = by_left.index.to_numpy(dtype=str)  # sorted by the group-by
        right_labels = np.unique(by_pair["r"].to_numpy(dtype=str))
        # dense table; last row: a left value never seen (the overall rate), last column:
        # a pair never seen (its left value's rate)
        table = np.full((len(left_labels) + 1, len(right_labels) + 1), prior)
        table[:-1, :] = left_rate.to_numpy()[:, None]
        li = np.searchsorted(left_labels, by_pair["l"].to_numpy(dtype=str))
        ri = np.searchsorted(right_labels, by_pair["r"].to_numpy(dtype=str))
        table[li, ri] = (by_pair["sum"].to_numpy() + self.smoothing * left_rate.to_numpy()[li]) / (
            by_pair["count"].to_numpy() + self.smoothing
        )
        return FittedPairRate(self, left_labels, right_labels, table, prior)

    def out_of_fold(
        self, left: np.ndarray, right: np.ndarray, label: np.ndarray, groups: np.ndarray
    ) -> np.ndarray:
        """Each row's rate from the rows of the other folds (folds by ``groups``, e.g. the
        invoice, so no row sees its own or its invoice's outcome)."""
        fold = fold_of(groups)
        out = np.empty(len(fold))
        for k in range(FOLDS):  # five fits over the whole column each, not a row loop
            mine = fold == k
            if mine.any():
                fitted = self.fit(left[~mine], right[~mine], label[~mine])
                out[mine] = fitted.lookup(left[mine], right[mine])
        return out


def fold_of(groups: np.ndarray) -> np.ndarray:
    """Each row's fold, from a hash of its group's value: the same rows get the same folds
    in any order or partition (the Dask path gathers them part by part)."""
    return (pd.util.hash_array(_text(groups).astype(object)) % FOLDS).astype(np.int64)


@dataclass(frozen=True)
class FittedPairRate:
    """A :class:`PairRate` with its rates as a dense table over the values seen in
    training: unseen pairs get their left value's rate, unseen left values the overall
    rate. Looked up by binary search on the sorted labels (the policy calls this in
    every round of its search)."""

    spec: PairRate
    left_labels: np.ndarray
    right_labels: np.ndarray
    table: np.ndarray  # (left values + 1, right values + 1)
    prior: float

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def left_rate(self) -> pd.Series:
        """Each seen left value's own rate."""
        return pd.Series(self.table[:-1, -1], index=self.left_labels)

    def lookup(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        right_text = self.spec.right_labels(right)
        return self.table[
            _position(self.left_labels, _text(left)), _position(self.right_labels, right_text)
        ]


def _position(labels: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Index of each label ``text`` in the sorted ``labels``; ``len(labels)`` when not among
    them."""
    if len(labels) == 0:
        return np.zeros(len(text), dtype=np.int64)
    at = np.minimum(np.searchsorted(labels, text), len(labels) - 1)
    return np.where(labels[at] == text, at, len(labels))


def _text(values: np.ndarray) -> np.ndarray:
    """Category values as strings, missing as the empty string (a category of its own);
    numpy, not pandas: a tenth of the time on the search's small arrays."""
    values = np.asarray(values, dtype=object)
    return np.where(pd.isna(values), "", values).astype(str)

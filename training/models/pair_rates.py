"""Smoothed outcome rates of pairs of categories, as numeric model inputs.

A template that works for one decline reason and not for another (an "update your card"
message after an expired card, not after insufficient funds) is an interaction that
boosting on a rare template learns slowly: early stopping on a validation period ruled
by the common templates ends before the trees isolate a few hundred rows. The observed
rate of each (template, decline category) pair, shrunk towards the template's own rate
when the pair is rare, hands the model that interaction as one number. Training rows
get it out of fold (each fold's rows from the other folds' outcomes, never their own);
validation, test and live rows from all training rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FOLDS = 5


@dataclass(frozen=True)
class PairRate:
    """Rate of the label for each (``left``, ``right``) pair, shrunk towards ``left``'s
    rate with the weight of ``smoothing`` rows; ``left``'s towards the overall rate."""

    name: str
    left: str
    right: str
    smoothing: float = 30.0

    def fit(self, left: np.ndarray, right: np.ndarray, label: np.ndarray) -> FittedPairRate:
        frame = pd.DataFrame(
            {"l": _text(left), "r": _text(right), "y": np.asarray(label, dtype=float)}
        )
        prior = float(frame["y"].mean()) if len(frame) else 0.0
        by_left = frame.groupby("l")["y"].agg(["sum", "count"])
        left_rate = (by_left["sum"] + self.smoothing * prior) / (by_left["count"] + self.smoothing)
        by_pair = frame.groupby(["l", "r"])["y"].agg(["sum", "count"]).reset_index()
        shrink_to = left_rate.reindex(by_pair["l"]).to_numpy()
        pair_rate = (by_pair["sum"].to_numpy() + self.smoothing * shrink_to) / (
            by_pair["count"].to_numpy() + self.smoothing
        )
        return FittedPairRate(
            self,
            pd.Series(pair_rate, index=pd.MultiIndex.from_frame(by_pair[["l", "r"]])),
            left_rate,
            prior,
        )

    def out_of_fold(
        self, left: np.ndarray, right: np.ndarray, label: np.ndarray, groups: np.ndarray
    ) -> np.ndarray:
        """Each row's rate from the rows of the other folds (folds by ``groups``, e.g. the
        invoice, so no row sees its own or its invoice's outcome)."""
        fold = pd.factorize(np.asarray(groups))[0] % FOLDS
        out = np.empty(len(fold))
        for k in range(FOLDS):  # five fits over the whole column each, not a row loop
            mine = fold == k
            if mine.any():
                fitted = self.fit(left[~mine], right[~mine], label[~mine])
                out[mine] = fitted.lookup(left[mine], right[mine])
        return out


@dataclass(frozen=True)
class FittedPairRate:
    """A :class:`PairRate` with its rates: unseen pairs get their left value's rate,
    unseen left values the overall rate."""

    spec: PairRate
    pair_rate: pd.Series  # index (left, right)
    left_rate: pd.Series
    prior: float

    @property
    def name(self) -> str:
        return self.spec.name

    def lookup(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        left_text, right_text = _text(left), _text(right)
        keys = pd.MultiIndex.from_arrays([left_text, right_text])
        at = self.pair_rate.index.get_indexer(keys)
        fallback = self.left_rate.reindex(left_text).to_numpy(dtype=float)
        fallback = np.where(np.isnan(fallback), self.prior, fallback)
        return np.where(at >= 0, self.pair_rate.to_numpy()[np.maximum(at, 0)], fallback)


def _text(values: np.ndarray) -> np.ndarray:
    """Category values as strings, missing as the empty string (a category of its own)."""
    series = pd.Series(np.asarray(values, dtype=object))
    return series.where(series.notna(), "").astype(str).to_numpy()

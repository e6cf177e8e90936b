"""Out-of-fold booster scores of the training rows, so the calibration map can be fitted
on the whole training history instead of the validation period alone.

A calibration map fitted on one short validation period learns that period's own level:
on the default world at 20,000 invoices the message response rate of the validation
months was 6.4% where the months before and after it had 8.0% and 7.8% (3 standard
errors apart), and every message probability served afterwards was 15-20% too low, the
schedules made of messages alone (hard declines, disputes) most. Scores of the training
rows from boosters that never saw them (``folds`` boosters, each fitted on the other
folds' invoices with the main booster's settings and number of rounds) cover the whole
training period; the map is then fitted on those and the validation period's scores.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd


def invoice_folds(groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold number of each row, the same for every row of one invoice (rows of one
    invoice share its outcome, so they are never split between fitting and scoring)."""
    if folds < 2:
        raise ValueError(f"out-of-fold scores need at least 2 folds, not {folds}")
    codes, uniques = pd.factorize(np.asarray(groups, dtype=object))
    fold_of_group = np.random.default_rng(seed).permutation(len(uniques)) % folds
    return fold_of_group[codes]


def out_of_fold_scores(
    booster_params: dict[str, Any],
    x: pd.DataFrame,
    y: np.ndarray,
    weight: np.ndarray,
    categorical: list[str],
    groups: np.ndarray,
    folds: int,
    rounds: int,
    offsets: np.ndarray | None = None,
) -> np.ndarray:
    """Raw booster score of every row of ``x`` (already encoded) from a booster fitted on
    the other folds for ``rounds`` rounds (``offsets``: log-odds each fitting row's score
    starts from, LightGBM's ``init_score``; the scores, like the main booster's, leave
    them out)."""
    fold = invoice_folds(groups, folds, int(booster_params.get("seed", 0)))
    scores = np.full(len(x), np.nan)
    for k in range(folds):
        held = fold == k
        if not held.any() or held.all():
            continue
        fitting = ~held
        data = lgb.Dataset(
            x[fitting],
            y[fitting],
            weight=weight[fitting],
            init_score=None if offsets is None else offsets[fitting],
            categorical_feature=categorical,
            free_raw_data=True,
        )
        booster = lgb.train(booster_params, data, num_boost_round=rounds)
        scores[held] = np.asarray(booster.predict(x[held], num_iteration=rounds))
    return scores

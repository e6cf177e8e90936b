"""The count effect's regression from its sufficient data (``count_cells``): what the
cluster fit gathers instead of the training rows (training/scale/fit.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.models.count_effect import add_cells, count_cells, fit_cells, fit_count_effect

FEATURES = ["retries_before", "hours_since_failure", "inv_decline_category", "messages_before"]
ARGS = ("messages_before", "retries_before")


def _rows(n: int, seed: int) -> pd.DataFrame:
    """Retries whose count of earlier messages rises with the wait and lowers the odds."""
    rng = np.random.default_rng(seed)
    rank = rng.integers(0, 4, n).astype(float)
    hours = 24.0 + 48.0 * rank + rng.uniform(0, 48, n)
    count = np.clip(np.floor(hours / 60.0) + rng.integers(-1, 2, n), 0, 5).astype(float)
    count[rng.random(n) < 0.05] = np.nan  # a missing count weighs as none
    category = rng.choice(["insufficient_funds", "do_not_honor", None], n)
    logit = -2.0 + 0.004 * hours - 0.3 * rank - 0.4 * np.nan_to_num(np.minimum(count, 3))
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "retries_before": rank,
            "hours_since_failure": hours,
            "inv_decline_category": pd.Categorical(category),
            "messages_before": count,
        }
    )
    return frame.assign(y=y)


def test_the_parts_cells_add_up_to_the_whole_histories():
    rows = _rows(6000, 1)
    y = rows["y"].to_numpy()
    whole = count_cells(rows, y, *ARGS)
    bounds = [0, 1000, 3500, 6000]
    parts = [
        count_cells(rows.iloc[a:b], y[a:b], *ARGS)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    pd.testing.assert_frame_equal(add_cells(parts), whole)
    assert whole["rows"].sum() == len(rows) and whole["positives"].sum() == y.sum()
    assert len(whole) < len(rows) / 10  # a few hundred cells, not the rows
    assert whole["messages_before"].max() == 3.0  # capped as the regression caps it


def test_the_cells_fit_is_the_rows_fit_to_the_solvers_tolerance():
    """The same likelihood: the slope and its error agree up to where L-BFGS-B stops."""
    rows = _rows(20000, 2)
    y = rows["y"].to_numpy()
    from_rows = fit_count_effect(rows, y, *ARGS[:1], FEATURES, ARGS[1])
    from_cells = fit_cells(count_cells(rows, y, *ARGS), ARGS[0], FEATURES, ARGS[1])
    assert from_rows.estimate < -0.2
    assert from_cells.rows == from_rows.rows == len(rows)
    assert from_cells.position == from_rows.position == 3
    assert abs(from_cells.estimate - from_rows.estimate) < 2e-3
    assert abs(from_cells.standard_error - from_rows.standard_error) < 1e-4
    assert abs(from_cells.per_unit - from_rows.per_unit) < 2e-3
    # no variation in the count: no slope, as from the rows
    flat = rows.assign(messages_before=1.0)
    assert fit_cells(count_cells(flat, y, *ARGS), ARGS[0], FEATURES, ARGS[1]).per_unit == 0.0

"""The active hour's learned cell weights on a Dask cluster (``train.features.active_hour
.weighting: learned``): learned once over all parts, exactly as in process.

The learning needs two things across customers (``training/features/active_hour.py``):
the cutoff, a quantile of every send's time, and each cell's logistic fit over every fit
row. The rest is per customer, and a part holds whole customers. So: (1) each part sends
its sends' times and the client takes the cutoff; (2) each part sends its fit rows for
that cutoff and the client fits the weights with the in-process code, on the rows
concatenated in part order (the in-process history's order); (3) every part's training
rows use those weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.config.params import ActiveHourParams
from training.features.active_hour import learn_cutoff, weights_from_rows
from training.features.history_log import CELLS, activity_fit_rows, send_seconds
from training.scale.parts import ValidatedPart


def _send_seconds(part: ValidatedPart) -> np.ndarray:
    return send_seconds(part.history)


def _fit_rows(part: ValidatedPart, cutoff: float) -> pd.DataFrame:
    return activity_fit_rows(part.history, cutoff)


def cell_weights_on_cluster(
    client: Any, validated: list[Any], settings: ActiveHourParams
) -> np.ndarray | None:
    """The cells' weights learned over every part in ``validated`` (futures, in part
    order); None unless the weighting is learned."""
    if settings.weighting != "learned":
        return None
    seconds = client.gather(client.map(_send_seconds, validated))
    cutoff = learn_cutoff(np.concatenate([np.empty(0, np.int64), *seconds]))
    rows = client.gather(client.map(_fit_rows, validated, cutoff=cutoff))
    return weights_from_rows(pd.concat(rows, ignore_index=True), CELLS)

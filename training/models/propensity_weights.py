"""Training-row weights from the logged propensities: explored rows count more.

A history's timing varies apart from the logging team's plan only on its explored rows
(a retry delayed at random, a plan drawn from a menu): the rest sit on the plan's fixed
offsets, so trees fitted on all rows alike learn the timing mostly from the plan's
rows. Weighting each retry or message row by its inverse propensity, clipped,
gives the explored rows more say in the boosting.

The weight of a row is ``min(1 / propensity, clip)``, rescaled to mean 1 over the rows
(so LightGBM's L2 penalty and minimum hessian keep their scale). A row without a
propensity is the logging policy's deterministic choice (the contract logs one only
"when it randomized": a billing system's export usually has none), propensity 1,
weight 1 before the rescaling; a history without any propensity gets all weights 1.
``clip`` 1 turns the weighting off. The weights act on the boosting only: the
calibration map is fitted on unweighted rows, so the probabilities stay calibrated
on the rows as logged (docs/training.md, "Propensity weights").
"""

from __future__ import annotations

import numpy as np


def propensity_weights(propensity: np.ndarray | None, clip: float) -> np.ndarray | None:
    """Stabilised, clipped inverse-propensity weight per row (mean 1), or None when it
    would be 1 everywhere (``clip`` <= 1, no propensity column, or no row logs one)."""
    if propensity is None or clip <= 1.0 or len(propensity) == 0:
        return None
    p = np.asarray(propensity, dtype=float)
    known = np.isfinite(p) & (p > 0)
    if not known.any():
        return None
    inverse = np.ones(len(p))
    inverse[known] = 1.0 / np.minimum(p[known], 1.0)
    weight = np.minimum(inverse, clip)
    return weight / weight.mean()

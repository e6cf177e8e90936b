"""Log-odds of probabilities, clipped so that 0 and 1 stay finite."""

from __future__ import annotations

import numpy as np

EDGE = 1e-6  # probabilities are clipped to [EDGE, 1 - EDGE] before the log-odds


def logit(p: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))`` of ``p`` clipped to [1e-6, 1 - 1e-6]."""
    p = np.minimum(np.maximum(p, EDGE), 1 - EDGE)  # np.clip, without its ~5 µs a call
    return np.log(p / (1 - p))

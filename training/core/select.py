"""``np.select`` without its broadcasting, for the decision path's one-dimensional cases.

``np.select`` broadcasts every condition and every choice against each other before it
writes them (``np.broadcast_arrays`` twice: ~0.15 M instructions a call with a dozen
conditions, on a lone request's one row as on a batch's). The rules word each decision
through four of them and the reasons through one. :func:`select` gives the same array,
values and dtype, for conditions that are boolean arrays of one length and choices that
are scalars or arrays of that length, and hands any other input to ``np.select``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_PYTHON_NUMBERS = (int, float, complex)


def select(
    conditions: Sequence[np.ndarray], choices: Sequence[Any], default: Any = 0
) -> np.ndarray:
    """``np.select(conditions, choices, default)``: for each row, the choice of the first
    condition true there, else ``default``; the result's dtype is the choices' and the
    default's common one, as ``np.select`` makes it (Python numbers weak, as there)."""
    if not _one_dimensional(conditions, choices, default):
        return np.select(list(conditions), list(choices), default)
    values = [v if type(v) in _PYTHON_NUMBERS else np.asarray(v) for v in (*choices, default)]
    result = np.full(len(conditions[0]), np.asarray(values[-1]), np.result_type(*values))
    # the last condition first, so that the first true one writes last (as np.select)
    for choice, condition in zip(values[-2::-1], conditions[::-1], strict=True):
        np.copyto(result, np.asarray(choice), where=condition)
    return result


def _one_dimensional(
    conditions: Sequence[np.ndarray], choices: Sequence[Any], default: Any
) -> bool:
    """Conditions: boolean 1-d arrays of one length, as many as the choices; choices and
    default: scalars or 1-d arrays of that length (no broadcasting needed)."""
    if not len(conditions) or len(conditions) != len(choices):
        return False  # (np.select raises)
    n = len(conditions[0])
    for condition in conditions:
        if type(condition) is not np.ndarray or condition.dtype != np.bool_:
            return False
        if condition.shape != (n,):
            return False
    for value in (*choices, default):
        if isinstance(value, np.ndarray) and value.ndim and value.shape != (n,):
            return False
    return True

"""Held-out quality of a probability model, next to a constant predictor's."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score


def expected_calibration_error(label: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean prediction| over equal-count bins, weighted by size."""
    if len(p) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, min(bins, len(p)))
    gaps = [abs(label[g].mean() - p[g].mean()) * len(g) for g in groups if len(g)]
    return float(np.sum(gaps) / len(p))


def reliability_table(
    label: np.ndarray, p: np.ndarray, bins: int = 10
) -> list[tuple[float, float, int]]:
    """(mean prediction, observed rate, rows) per equal-count bin, for the calibration plot."""
    order = np.argsort(p, kind="stable")
    return [
        (float(p[g].mean()), float(label[g].mean()), int(len(g)))
        for g in np.array_split(order, min(bins, max(len(p), 1)))
        if len(g)
    ]


def binary_metrics(label: np.ndarray, p: np.ndarray, base_rate: float) -> dict[str, float]:
    """AUC, log loss, Brier, calibration error; the constant predictor's log loss and Brier."""
    label = np.asarray(label, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    constant = np.full(len(label), np.clip(base_rate, 1e-6, 1 - 1e-6))
    both = len(np.unique(label)) == 2
    return {
        "rows": float(len(label)),
        "positive_rate": float(label.mean()) if len(label) else float("nan"),
        "mean_prediction": float(p.mean()) if len(p) else float("nan"),
        "auc": float(roc_auc_score(label, p)) if both else float("nan"),
        "log_loss": float(log_loss(label, p, labels=[0, 1])),
        "brier": float(brier_score_loss(label, p)),
        "calibration_error": expected_calibration_error(label, p),
        "constant_log_loss": float(log_loss(label, constant, labels=[0, 1])),
        "constant_brier": float(brier_score_loss(label, constant)),
    }

"""Fixtures shared by the policy tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def count_model_rows(monkeypatch) -> Callable[..., list[int]]:
    """Wraps a decider's model calls: each call (of ``model`` only, when given) appends
    the number of rows it scores to the returned list; the scores are unchanged."""

    def wrap(decider, model=None) -> list[int]:
        rows: list[int] = []
        predict = decider.scorer.predict

        def counted(called, matrix, positions, columns):
            if model is None or called is model:
                rows.append(len(positions))
            return predict(called, matrix, positions, columns)

        monkeypatch.setattr(decider.scorer, "predict", counted)
        return rows

    return wrap

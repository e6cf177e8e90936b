"""Time-based split: train on the past, stop early and calibrate on the next period,
evaluate on the latest. Invoices whose dunning window runs into the following period
are dropped (the embargo), so no label from a later period leaks into an earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.config.params import TrainParams


@dataclass(frozen=True)
class TimeSplit:
    start: pd.Timestamp
    valid_start: pd.Timestamp
    test_start: pd.Timestamp
    end: pd.Timestamp
    embargo: pd.Timedelta

    @classmethod
    def from_due_dates(cls, due_at: pd.Series, params: TrainParams) -> TimeSplit:
        due = pd.to_datetime(due_at, utc=True)
        if due.empty:
            raise ValueError("cannot split an empty history")
        quantiles = due.quantile(
            [1 - params.test_share - params.valid_share, 1 - params.test_share]
        )
        return cls(
            start=due.min(),
            valid_start=quantiles.iloc[0],
            test_start=quantiles.iloc[1],
            end=due.max(),
            embargo=pd.Timedelta(days=params.embargo_days),
        )

    def assign(self, due_at: pd.Series) -> np.ndarray:
        """'train', 'valid', 'test' or 'embargo' per row."""
        due = pd.to_datetime(due_at, utc=True)
        return np.select(
            [
                due < self.valid_start - self.embargo,
                (due >= self.valid_start) & (due < self.test_start - self.embargo),
                due >= self.test_start,
            ],
            ["train", "valid", "test"],
            default="embargo",
        )

    def describe(self) -> dict[str, str]:
        return {
            "train_period": f"{self.start.date()} .. {(self.valid_start - self.embargo).date()}",
            "valid_period": f"{self.valid_start.date()} .. {(self.test_start - self.embargo).date()}",
            "test_period": f"{self.test_start.date()} .. {self.end.date()}",
            "test_start": self.test_start.isoformat(),
        }

"""The in-memory form of a history: four typed DataFrames, one per contract table.

Canonical dtypes, which everything downstream may rely on once a history has been
validated: ids and strings are Python ``str`` objects (missing: ``None``/NaN),
timestamps are ``datetime64[ns, UTC]``, ``amount_minor`` is ``int64``,
``sms_opt_in`` is ``bool`` and ``propensity`` is ``float64`` (missing: NaN).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

from training.contract.tables import TABLE_NAMES


@dataclass
class History:
    customers: pd.DataFrame
    invoices: pd.DataFrame
    attempts: pd.DataFrame
    messages: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_tables(cls, tables: dict[str, pd.DataFrame]) -> History:
        return cls(**{name: tables[name] for name in TABLE_NAMES})

    def __len__(self) -> int:
        return len(self.invoices)

"""What a validation run found: rows per table, every rejected row with its reason(s)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

# One line per (rejected row, reason): a row broken two ways appears twice.
REJECT_COLUMNS = ("table", "row", "id", "field", "reason", "raw")


@dataclass
class ValidationReport:
    """``rows``: input rows per table. ``rejects``: columns ``REJECT_COLUMNS``, where ``row``
    is the 0-based data-row number in the input file and ``raw`` the row as read, in JSON."""

    rows: dict[str, int]
    rejects: pd.DataFrame
    max_reject_share: float
    rejects_path: Path | None = field(default=None)

    @property
    def rejected_rows(self) -> dict[str, int]:
        distinct = self.rejects.drop_duplicates(["table", "row"])["table"].value_counts()
        return {name: int(distinct.get(name, 0)) for name in self.rows}

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected_rows.values())

    @property
    def reject_share(self) -> float:
        return self.total_rejected / self.total_rows if self.total_rows else 0.0

    @property
    def ok(self) -> bool:
        return self.reject_share <= self.max_reject_share

    @property
    def reason_counts(self) -> pd.DataFrame:
        """Rows per (table, reason): tables in contract order, most frequent reason first."""
        counts = self.rejects.groupby(["table", "reason"], sort=False).size()
        counts = counts.rename("rows").reset_index()
        order = counts["table"].map({name: i for i, name in enumerate(self.rows)})
        return (
            counts.assign(order=order)
            .sort_values(["order", "rows", "reason"], ascending=[True, False, True])
            .drop(columns="order")
            .reset_index(drop=True)
        )

    def limit_message(self) -> str:
        verdict = "above" if not self.ok else "within"
        return (
            f"{self.total_rejected} of {self.total_rows} rows rejected "
            f"({self.reject_share:.2%}), {verdict} the limit of {self.max_reject_share:.2%} "
            "(validate.max_reject_share)"
        )

    def summary(self) -> str:
        lines = [f"{'table':<10} {'rows':>10} {'rejected':>9}"]
        rejected = self.rejected_rows
        lines += [f"{name:<10} {n:>10} {rejected[name]:>9}" for name, n in self.rows.items()]
        counts = self.reason_counts
        if len(counts):
            lines.append("rejected rows by reason:")
            width = int(counts["reason"].str.len().max())
            lines += [
                f"  {r.table:<10} {r.reason:<{width}} {r.rows:>7}" for r in counts.itertuples()
            ]
        if self.rejects_path is not None:
            lines.append(f"rejects file: {self.rejects_path}")
        lines.append(("OK: " if self.ok else "FAILED: ") + self.limit_message())
        return "\n".join(lines)

    def write_rejects(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.rejects.to_csv(path, index=False, columns=list(REJECT_COLUMNS))
        self.rejects_path = path
        return path

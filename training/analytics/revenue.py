"""Revenue at risk (every failed invoice) against revenue recovered, per currency.

Amounts are summed per currency in major units and never converted: a static exchange
rate would put a number on the page that no one's books hold.
"""

from __future__ import annotations

import pandas as pd

from training.analytics.currency import to_major


def revenue_at_risk(cycles: pd.DataFrame, closed_only: bool = True) -> pd.DataFrame:
    """Per currency: invoices, amount at risk, recovered (by retry, by customer), unrecovered.

    Amounts in the currency's major unit; ``recovered_share`` is recovered / at risk.
    Rows by number of invoices, most first. With ``closed_only`` invoices whose window is
    still open are left out.
    """
    frame = cycles[cycles["window_closed"]] if closed_only else cycles
    amount = to_major(frame["amount_minor"], frame["currency"])
    parts = pd.DataFrame(
        {
            "currency": frame["currency"].str.upper(),
            "invoices": 1,
            "at_risk": amount,
            "recovered_by_retry": amount.where(frame["recovered_by"].eq("merchant"), 0.0),
            "recovered_by_customer": amount.where(frame["recovered_by"].eq("customer"), 0.0),
        }
    )
    table = parts.groupby("currency").sum()
    table["recovered"] = table["recovered_by_retry"] + table["recovered_by_customer"]
    table["unrecovered"] = table["at_risk"] - table["recovered"]
    table["recovered_share"] = table["recovered"] / table["at_risk"]
    return table.sort_values(["invoices", "at_risk"], ascending=False)

"""Plain-words reasons for a learned schedule, built vectorized and read per event."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.policy.config import PolicyConfig


def model_reasons(
    events: pd.DataFrame,
    decisions: pd.DataFrame,
    features: pd.DataFrame,
    retries: pd.DataFrame,
    messages: pd.DataFrame,
    expected: np.ndarray,
    baseline: np.ndarray,
    config: PolicyConfig,
) -> list[list[str]]:
    """One list of short sentences per event (same order as ``events``)."""
    ids = events["event_id"]
    category = decisions["category"].astype(str).str.replace("_", " ").to_numpy()
    n_retries = ids.map(retries.groupby("event_id").size()).fillna(0).to_numpy()
    first_template = ids.map(messages.groupby("event_id")["template"].first()).fillna("").to_numpy()
    payday = features.loc[ids.to_numpy(), "cust_pay_day_of_month"].to_numpy()
    funds = decisions["category"].isin(["insufficient_funds", "limit_exceeded"]).to_numpy()
    retryable = decisions["retryable"].to_numpy()
    needs_update = decisions["needs_update_first"].to_numpy(dtype=bool)
    timing = np.select(
        [
            retryable == "no",
            needs_update & (n_retries > 0),
            needs_update,
            funds & (n_retries > 0) & ~np.isnan(payday),
            (n_retries > 0),
        ],
        [
            category + ": never retried (" + decisions["rule"].astype(str).str.replace("_", " ").to_numpy() + ")",
            category + ": asks the customer to update the payment method first; retries only once an update is plausible",
            category + ": asks the customer to update the payment method; no retry fits before the window ends",
            category + ": retries placed after the customer's usual payday (around day "
            + pd.Series(np.round(np.nan_to_num(payday)).astype(int).astype(str)).to_numpy() + " of the month)",
            category + ": retries placed at the times with the best expected success",
        ],
        default=category + ": no retry allowed within the constraints; messages only",
    )
    message_text = np.where(
        first_template != "",
        "first message: " + pd.Series(first_template).str.replace("_", " ").to_numpy(),
        "no message expected to help",
    )
    gain = np.where(
        np.isnan(baseline),
        "",
        "expected recovery " + pd.Series(np.round(expected * 100).astype(int).astype(str)).to_numpy()
        + "% vs " + pd.Series(np.round(np.nan_to_num(baseline) * 100).astype(int).astype(str)).to_numpy()
        + "% for the fixed schedule",
    )
    no_sms = events["allow_sms"].to_numpy(dtype=bool) & ~events["sms_opt_in"].to_numpy(dtype=bool)
    quiet = f"messages outside quiet hours ({config.quiet_start_hour:02d}:00-{config.quiet_end_hour:02d}:00 local)"
    out = []
    for parts in zip(timing, message_text, gain, no_sms, strict=True):
        reasons = [str(parts[0]), str(parts[1]), quiet]
        if parts[3]:
            reasons.append("no SMS: the customer has not opted in")
        if parts[2]:
            reasons.append(str(parts[2]))
        out.append(reasons)
    return out

"""Where the learned policy loses against the oracle: hybrid schedules scored by the
world's exact truth.

The learned and the oracle schedule of each held-out failure differ in retry timing,
message choice and message count at once. Swapping one part at a time says which part
costs most: the oracle's retries with the learned messages (the gain from retry
timing), the learned retries with the oracle's messages (from messages: choice, timing
and count), the learned messages cut to the oracle's count (from the count alone), and
both policies' retries without any message (retry timing where no message interferes).
A hybrid is not a schedule either policy would choose, so it is a diagnostic only.
"""

from __future__ import annotations

import pandas as pd

from training.core.frames import Schedules

# name -> what it isolates (the report's column headers)
HYBRIDS = {
    "oracle_retries_learned_messages": "oracle retries + learned messages",
    "learned_retries_oracle_messages": "learned retries + oracle messages",
    "learned_messages_at_oracle_count": "learned, messages cut to the oracle's count",
    "learned_retries_only": "learned retries, no message",
    "oracle_retries_only": "oracle retries, no message",
}
_NO_MESSAGES = pd.DataFrame(columns=["event_id", "send_at", "template", "channel"])


def messages_cut_to(messages: pd.DataFrame, counts: pd.Series) -> pd.DataFrame:
    """The first ``counts[event_id]`` messages of each event (in send order); events
    absent from ``counts`` keep none."""
    ordered = messages.sort_values(["event_id", "send_at"], kind="stable")
    rank = ordered.groupby("event_id", sort=False).cumcount().to_numpy()
    allowed = ordered["event_id"].map(counts).fillna(0).to_numpy()
    return ordered[rank < allowed].reset_index(drop=True)


def hybrid_schedules(learned: Schedules, oracle: Schedules) -> dict[str, Schedules]:
    """Every hybrid of :data:`HYBRIDS` from the two policies' schedules."""
    oracle_counts = oracle.messages.groupby("event_id").size()
    no_messages = _NO_MESSAGES.astype({"send_at": "datetime64[ns, UTC]"})
    return {
        "oracle_retries_learned_messages": Schedules(oracle.retries, learned.messages),
        "learned_retries_oracle_messages": Schedules(learned.retries, oracle.messages),
        "learned_messages_at_oracle_count": Schedules(
            learned.retries, messages_cut_to(learned.messages, oracle_counts)
        ),
        "learned_retries_only": Schedules(learned.retries, no_messages),
        "oracle_retries_only": Schedules(oracle.retries, no_messages),
    }


def event_counts(schedules: dict[str, Schedules], events: pd.Series) -> pd.DataFrame:
    """Retries and messages per event of each policy (rows in ``events`` order; columns
    ``retries_<policy>`` and ``messages_<policy>``)."""
    columns = {}
    for name, s in schedules.items():
        for kind, frame in (("retries", s.retries), ("messages", s.messages)):
            per_event = frame.groupby("event_id").size().reindex(events.to_numpy()).fillna(0)
            columns[f"{kind}_{name}"] = per_event.to_numpy(dtype=float)
    return pd.DataFrame(columns)


def attribution_table(
    values: pd.DataFrame, groups: pd.Series, counts: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Mean exact recovery per group (and ``all``) of learned, oracle and every hybrid in
    ``values``, the share of the learned-to-oracle gap each swap closes, and the mean of
    every column of ``counts`` (same rows as ``values``)."""
    columns = ["learned", *[h for h in HYBRIDS if h in values.columns], "oracle"]
    frame = values[columns] if counts is None else pd.concat([values[columns], counts], axis=1)
    table = frame.groupby(groups.to_numpy()).mean()
    table.loc["all"] = frame.mean()
    table["invoices"] = values.groupby(groups.to_numpy()).size().reindex(table.index)
    table.loc["all", "invoices"] = len(values)
    gap = table["oracle"] - table["learned"]
    for hybrid in columns[1:-1]:
        table[f"closed_by_{hybrid}"] = (table[hybrid] - table["learned"]) / gap.where(gap > 0)
    return table.sort_values("invoices", ascending=False)

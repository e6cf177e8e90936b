"""Gap attribution: hybrids of the learned and oracle schedules, and their table."""

import numpy as np
import pandas as pd
import pytest

from training.core.frames import Schedules
from training.declines.table import family_of
from training.evaluation.attribution import (
    HYBRIDS,
    attribution_table,
    event_counts,
    hybrid_schedules,
    messages_cut_to,
)


def _t(hours: float) -> pd.Timestamp:
    return pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=hours)


def _schedules(retries: dict[str, list[float]], messages: dict[str, list[tuple[float, str]]]):
    r = pd.DataFrame(
        [(e, _t(h)) for e, hs in retries.items() for h in hs], columns=["event_id", "at"]
    )
    m = pd.DataFrame(
        [(e, _t(h), tpl, "email") for e, ms in messages.items() for h, tpl in ms],
        columns=["event_id", "send_at", "template", "channel"],
    )
    return Schedules(r, m)


LEARNED = _schedules(
    {"a": [24, 48], "b": [30]}, {"a": [(5, "x"), (1, "y"), (9, "z")], "b": [(2, "x")]}
)
ORACLE = _schedules({"a": [200], "b": [100, 150]}, {"a": [(3, "w")]})


def test_messages_cut_keeps_the_earliest_and_drops_events_without_a_count():
    cut = messages_cut_to(LEARNED.messages, pd.Series({"a": 2}))
    assert cut["event_id"].tolist() == ["a", "a"]
    assert cut["template"].tolist() == ["y", "x"]  # sent at 1 h and 5 h, not 9 h


def test_hybrids_swap_one_part_and_keep_the_other():
    hybrids = hybrid_schedules(LEARNED, ORACLE)
    assert set(hybrids) == set(HYBRIDS)
    swapped = hybrids["oracle_retries_learned_messages"]
    assert swapped.retries.equals(ORACLE.retries) and swapped.messages.equals(LEARNED.messages)
    swapped = hybrids["learned_retries_oracle_messages"]
    assert swapped.retries.equals(LEARNED.retries) and swapped.messages.equals(ORACLE.messages)
    counted = hybrids["learned_messages_at_oracle_count"]
    assert counted.messages["template"].tolist() == ["y"]  # a: oracle sends 1, b: none
    assert hybrids["learned_retries_only"].messages.empty
    assert hybrids["oracle_retries_only"].retries.equals(ORACLE.retries)


def test_event_counts_per_policy_in_event_order():
    counts = event_counts({"learned": LEARNED, "oracle": ORACLE}, pd.Series(["b", "a", "c"]))
    assert counts["retries_learned"].tolist() == [1, 2, 0]
    assert counts["messages_oracle"].tolist() == [0, 1, 0]


def test_table_shares_of_the_gap_each_swap_closes():
    values = pd.DataFrame(
        {
            "learned": [0.4, 0.5, 0.9],
            "oracle_retries_learned_messages": [0.6, 0.6, 0.9],
            "oracle": [0.8, 0.7, 0.9],
        }
    )
    families = family_of(pd.Series(["insufficient_funds", "limit_exceeded", "expired_card"]))
    assert families.tolist() == ["insufficient_funds", "insufficient_funds", "card_update"]
    table = attribution_table(values, families)
    funds = table.loc["insufficient_funds"]
    assert funds["invoices"] == 2
    # learned 0.45, hybrid 0.60, oracle 0.75: the retries close half the gap
    assert funds["closed_by_oracle_retries_learned_messages"] == pytest.approx(0.5)
    assert np.isnan(table.loc["card_update", "closed_by_oracle_retries_learned_messages"])
    assert table.loc["all", "invoices"] == 3
    assert table.loc["all", "learned"] == pytest.approx(0.6)

"""Time the decline-rules engine on the sizes the API and batch scoring use.

    python benchmarks/bench_rules.py                 # defaults: 200 small runs, 5 large
    python benchmarks/bench_rules.py --events 50000 --repeat 200 --repeat-large 5

Every figure is warm (one untimed call first) and measured with ``time.perf_counter``;
the median and the best of the repeats are printed in milliseconds:

* ``classify 1 row``: ``DeclineTable.classify`` of one (processor, code) pair;
* ``classify 10 rows``: ten different pairs;
* ``decide 1 event``: ``RetryRules.decide`` (single row) with 2 previous attempts;
* ``decide_many 1 event, 2 previous``: ``RetryRules.decide_many`` of a one-row frame;
* ``decide_many 10 events``: ten events with 0-4 previous attempts each;
* ``decide_many N events``: ``--events`` synthetic events (codes drawn from the reference
  table plus unknown ones, MACs, brands, 0-4 previous attempts each).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from training.declines.rules import RetryRules
from training.declines.table import PROCESSORS, DeclineTable, load_decline_table

FAILED_AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
METHOD = {
    "stripe": "card",
    "adyen": "card",
    "braintree": "card",
    "sepa": "sepa_debit",
    "bacs": "bacs_debit",
    "ach": "ach_debit",
}


def synthetic_events(
    table: DeclineTable, n: int, seed: int, max_previous: int = 4
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` failure events and their previous attempts, drawn from the reference table."""
    rng = np.random.default_rng(seed)
    rows = table.rows[table.rows["processor"].isin(PROCESSORS)]
    rows = rows[~rows["code"].str.match(r"^\d+-\d+$")]
    pick = rows.iloc[rng.integers(0, len(rows), n)]
    code = pick["code"].to_numpy(dtype=object)
    unknown = rng.random(n) < 0.05
    code[unknown] = rng.choice(np.array(["zz_unknown", None, "9999"], dtype=object), unknown.sum())
    processor = pick["processor"].to_numpy()
    method = pd.Series(processor).map(METHOD).to_numpy()
    is_card = method == "card"
    brand = np.where(is_card, rng.choice(["visa", "mastercard", "amex"], n), None)
    mac = np.where(
        is_card & (rng.random(n) < 0.3),
        rng.choice(np.array(["01", "02", "03", "04", "21", "24", "99"], dtype=object), n),
        None,
    )
    failed = pd.Timestamp(FAILED_AT) + pd.to_timedelta(rng.integers(0, 90 * 24, n), unit="h")
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "processor": processor,
            "payment_method": method,
            "card_brand": brand,
            "decline_code": code,
            "merchant_advice_code": mac,
            "failed_at": failed,
            "card_updated": rng.random(n) < 0.1,
        }
    )
    k = rng.integers(0, max_previous + 1, n)
    owner = np.repeat(np.arange(n), k)
    back = pd.to_timedelta(rng.integers(1, 45 * 24, owner.size), unit="h")
    previous = pd.DataFrame(
        {"event_id": events["event_id"].to_numpy()[owner], "attempted_at": failed[owner] - back}
    )
    return events, previous


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and best wall time in milliseconds, after one untimed warm-up call."""
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="events in the large case")
    parser.add_argument("--repeat", type=int, default=200, help="repeats of the small cases")
    parser.add_argument("--repeat-large", type=int, default=5, help="repeats of the large case")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    table = load_decline_table()
    rules = RetryRules(table=table)
    one_proc, one_code = pd.Series(["stripe"]), pd.Series(["insufficient_funds"])
    ten, ten_prev = synthetic_events(table, 10, args.seed)
    one = ten.iloc[:1].copy()
    one_prev = pd.DataFrame(
        {
            "event_id": [one["event_id"].iloc[0]] * 2,
            "attempted_at": [FAILED_AT - timedelta(days=3), FAILED_AT - timedelta(days=1)],
        }
    )
    one["failed_at"] = FAILED_AT
    big, big_prev = synthetic_events(table, args.events, args.seed)
    single = dict(
        processor="stripe",
        payment_method="card",
        card_brand="visa",
        decline_code="insufficient_funds",
        merchant_advice_code=None,
        failed_at=FAILED_AT,
        previous_attempts=[FAILED_AT - timedelta(days=3), FAILED_AT - timedelta(days=1)],
    )
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("classify 1 row", lambda: table.classify(one_proc, one_code), args.repeat),
        (
            "classify 10 rows",
            lambda: table.classify(ten["processor"], ten["decline_code"]),
            args.repeat,
        ),
        ("decide 1 event, 2 previous", lambda: rules.decide(**single), args.repeat),
        ("decide_many 1 event, 2 previous", lambda: rules.decide_many(one, one_prev), args.repeat),
        ("decide_many 10 events", lambda: rules.decide_many(ten, ten_prev), args.repeat),
        (
            f"decide_many {args.events:,} events",
            lambda: rules.decide_many(big, big_prev),
            args.repeat_large,
        ),
    ]
    print(f"{'case':<36} {'median ms':>10} {'best ms':>10} {'runs':>6}")
    for name, call, repeat in cases:
        median, best = timed(call, repeat)
        print(f"{name:<36} {median:>10.3f} {best:>10.3f} {repeat:>6}")


if __name__ == "__main__":
    main()

"""How good is the customer's estimated active hour (issue 13)?

Not a speed benchmark: a diagnostic. On a simulated history and its ground truth, at the
test period's decision times (each held-out invoice's failure, as of its due time), it
measures the product's active-hour estimate (``cust_active_hour``: a circular mean of the
local hours of the customer's activity events) against the customer's *true* active hour
(the world's latent ``active_peak_hour``, read here only to measure, never an input):

1. the share of decisions with an estimate, and the error |estimate - true| (circular
   hours: mean, median, share within 1 h and 3 h), by the number of activity events
   behind the estimate;
2. the same error for an estimate from one kind of activity event only (customer
   payments, opens, clicks) and from the events by hours since the latest message sent
   to the customer (a reply minutes after a send may echo the send's hour);
3. per event, the distance of its own local hour to the true active hour, by kind and by
   hours since the latest send;
4. with ``--variants``, each setting of the estimate (``train.features.active_hour``) in the same
   table as 1.

    smartretry simulate --world default --invoices 20000 --seed 7 --out DATA/default
    python benchmarks/active_hour_diagnosis.py --data DATA/default --variants
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from training.config.params import ActiveHourParams, TrainParams
from training.contract.io import load_history
from training.features.customer import CustomerIndex, customer_features
from training.features.history_log import (
    FLAGS,
    activity_events,
    add_local_time,
    customer_event_log,
)
from training.models.split import TimeSplit
from training.simulator.truth import GroundTruth

COUNT_BINS = [0, 1, 3, 7, 15, 31, np.inf]
LAG_BINS = [-np.inf, 1, 3, 12, np.inf]  # hours since the latest send
LAG_NAMES = ["0-1 h", "1-3 h", "3-12 h", "12 h+"]


def circular_error(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|estimate - truth| on the 24 h clock, in hours (NaN where no estimate)."""
    d = np.mod(np.asarray(estimate) - np.asarray(truth), 24.0)
    return np.minimum(d, 24.0 - d)


def error_row(error: np.ndarray) -> dict[str, float]:
    have = ~np.isnan(error)
    e = error[have]
    return {
        "with estimate": have.mean(),
        "mean err h": e.mean() if len(e) else np.nan,
        "median err h": np.median(e) if len(e) else np.nan,
        "within 1 h": (e <= 1).mean() if len(e) else np.nan,
        "within 3 h": (e <= 3).mean() if len(e) else np.nan,
    }


def decisions_of(history, params: TrainParams) -> pd.DataFrame:
    """The test period's failures: customer_id, as_of (the due time), signup_at."""
    inv = history.invoices
    split = TimeSplit.from_due_dates(inv["due_at"], params)
    test = inv[split.assign(inv["due_at"]) == "test"]
    signup = history.customers.set_index("customer_id")["signup_at"]
    return pd.DataFrame(
        {
            "customer_id": test["customer_id"].to_numpy(),
            "as_of": pd.to_datetime(test["due_at"], utc=True).to_numpy(),
            "signup_at": test["customer_id"].map(signup).to_numpy(),
        }
    )


def subset_log(history, events: pd.DataFrame) -> pd.DataFrame:
    """A customer event log holding only ``events`` as activity (every other flag 0)."""
    log = events[["customer_id", "at"]].copy()
    for name in FLAGS:
        log[name] = np.int8(name == "activity")
    timezone = history.customers.set_index("customer_id")["timezone"]
    return add_local_time(log, log["customer_id"].map(timezone))


def estimate(decisions: pd.DataFrame, log: pd.DataFrame, start) -> pd.DataFrame:
    features = customer_features(decisions, index=CustomerIndex.build(log, start))
    return features[["cust_active_hour", "cust_active_hour_strength", "cust_activity"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a simulated history")
    parser.add_argument("--truth", type=Path, help="its ground truth (default: DATA-truth)")
    parser.add_argument("--variants", action="store_true", help="also each estimate setting")
    args = parser.parse_args()
    truth_dir = args.truth or Path(f"{args.data}-truth")
    history, _ = load_history(args.data)
    truth = GroundTruth.load(truth_dir).invoices
    true_hour = truth.drop_duplicates("customer_id").set_index("customer_id")["active_peak_hour"]
    params = TrainParams()
    decisions = decisions_of(history, params)
    true_at = decisions["customer_id"].map(true_hour).to_numpy()
    start = history.invoices["due_at"].min()
    pd.set_option("display.width", 160, "display.precision", 3)

    log = customer_event_log(history)
    base = estimate(decisions, log, start)
    err = circular_error(base["cust_active_hour"].to_numpy(), true_at)
    print(f"{args.data}: {len(decisions):,} test-period decisions\n")
    print("1. the product's estimate (all activity), by activity events behind it")
    counts = pd.cut(base["cust_activity"], COUNT_BINS, right=False)
    table = pd.DataFrame(
        {
            str(c): {"decisions": (counts == c).mean(), **error_row(err[(counts == c).to_numpy()])}
            for c in counts.cat.categories
        }
    ).T
    table.loc["all"] = {"decisions": 1.0, **error_row(err)}
    print(table.to_string(), "\n")

    events = activity_events(history)
    lag = pd.cut(events["hours_since_send"].fillna(np.inf), LAG_BINS, labels=LAG_NAMES)
    print("2. an estimate from one kind of event only (same decisions)")
    rows = {}
    for kind in events["kind"].unique():
        one = estimate(decisions, subset_log(history, events[events["kind"] == kind]), start)
        rows[kind] = error_row(circular_error(one["cust_active_hour"].to_numpy(), true_at))
    for name in LAG_NAMES:
        one = estimate(decisions, subset_log(history, events[(lag == name).to_numpy()]), start)
        rows[f"since send {name}"] = error_row(
            circular_error(one["cust_active_hour"].to_numpy(), true_at)
        )
    print(pd.DataFrame(rows).T.to_string(), "\n")

    print("3. per event: its local hour against the true active hour")
    local = subset_log(history, events)
    # subset_log sorts by customer and time; re-attach kind and lag in the same order
    ordered = events.assign(lag=lag).sort_values(["customer_id", "at"], kind="stable")
    per = pd.DataFrame(
        {
            "kind": ordered["kind"].to_numpy(),
            "since send": ordered["lag"].to_numpy(),
            "error": circular_error(
                local["local_hour"].to_numpy(), local["customer_id"].map(true_hour).to_numpy()
            ),
        }
    )
    summary = per.groupby(["kind", "since send"], observed=True)["error"].agg(
        events="size",
        mean="mean",
        within_1h=lambda e: (e <= 1).mean(),
        within_3h=lambda e: (e <= 3).mean(),
    )
    print(summary.to_string(), "\n")

    if args.variants:
        print("4. the estimate under each setting (all decisions)")
        rows = {}
        for name, settings in VARIANTS.items():
            one = estimate(decisions, customer_event_log(history, settings), start)
            rows[name] = error_row(circular_error(one["cust_active_hour"].to_numpy(), true_at))
        print(pd.DataFrame(rows).T.to_string(), "\n")


VARIANTS = {
    "equal (main)": ActiveHourParams(),
    "learned, power 1": ActiveHourParams(weighting="learned", weight_power=1.0),
    "learned, power 2": ActiveHourParams(weighting="learned", weight_power=2.0),
    "learned, power 3": ActiveHourParams(weighting="learned", weight_power=3.0),
}


if __name__ == "__main__":
    main()

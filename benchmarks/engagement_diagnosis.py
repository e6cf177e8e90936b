"""Why the message model is flat along the customer's responsiveness (issue 13, h102).

Not a speed benchmark: a diagnostic on a world cached by ``message_diagnosis.py`` (the
same ``--out``; simulated and trained when absent). On the logged message rows it

1. builds as-of history inputs, the model's own and candidates it lacks (the customer's
   own attempts and payments, clicks per send shrunk, opens per send, hours to pay
   unprompted), and prints, on the held-out rows, their Spearman correlation with the
   world's latent engagement (a diagnostic grouping, never an input), their coverage and
   their share of the message trees' gain;
2. refits the message trees (the served model's LightGBM settings, a Platt map on the
   validation period) without and with the candidates: held-out log loss with a paired
   bootstrap interval and the mean estimate by engagement quintile;
3. asks how far a perfect model of the history could follow the engagement: the world's
   truth of the held-out messages with the engagement replaced by its regression on the
   as-of inputs (fitted on training rows), by engagement quintile.

    python benchmarks/engagement_diagnosis.py --world default --invoices 20000 --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from message_diagnosis import cached_world, held_out_rows
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

from training.config.params import load_params
from training.declines.table import load_decline_table
from training.features.frames import candidate_features
from training.models.datasets import history_timeline, training_data_for
from training.models.split import TimeSplit

SELF_PAY = ["own_attempts", "own_payments", "own_recovery_per_failure"]
CLICKS = ["click_rate_shrunk", "clicks"]
OBSERVABLE = [
    *SELF_PAY,
    *CLICKS,
    "sends",
    "open_rate",
    "log_hours_to_own_payment",
    "cust_activity",
    "cust_recovery_by_retry_share",
    "cust_failures_total",
    "cust_tenure_days",
    "cust_sms_click_rate",
    "cust_sms_sent",
]


def _as_of_count(rows: pd.DataFrame, customers: pd.Series, times: pd.Series) -> np.ndarray:
    """Per row, the customer's events strictly before the row's time ``t``."""
    events = pd.DataFrame(
        {"customer": customers.to_numpy(), "at": pd.to_datetime(times.to_numpy(), utc=True)}
    )
    events = events.dropna().sort_values("at", kind="stable")
    events["n"] = events.groupby("customer").cumcount() + 1
    query = rows[["customer", "t"]].reset_index().sort_values("t", kind="stable")
    found = pd.merge_asof(
        query, events, left_on="t", right_on="at", by="customer", allow_exact_matches=False
    )
    return found.set_index("index")["n"].reindex(rows.index).fillna(0).to_numpy()


def message_rows(world, params):
    """The logged message rows: inputs, label, split part, engagement and candidates."""
    history, truth = world.history, world.truth
    data = training_data_for(history, params, load_decline_table())
    timeline = history_timeline(history)
    rows = candidate_features(data.event_features, timeline, params.retry_rules.update_requests)
    meta = timeline.loc[rows.index]
    meta = meta[(meta["kind"] == "message").to_numpy()]
    x = data.message.features.reset_index(drop=True)
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    owner = history.invoices.set_index("invoice_id")["customer_id"]
    keys = meta["key"].to_numpy()
    f = pd.DataFrame(
        {
            "y": np.asarray(data.message.label),
            "part": np.asarray(split.assign(data.message.due_at)),
            "invoice": keys,
            "customer": owner.reindex(keys).to_numpy(),
            "t": pd.to_datetime(meta["t"].to_numpy(), utc=True),
            "engagement": truth.invoices.set_index("invoice_id")["engagement"]
            .reindex(keys)
            .to_numpy(),
        }
    )
    numeric = [c for c in x.columns if x[c].dtype.kind in "fiub"]
    f = f.join(x[numeric].astype(float))
    sent = f["cust_email_sent"].fillna(0) + f["cust_sms_sent"].fillna(0)
    clicks = f["cust_email_click_rate"].fillna(0) * f["cust_email_sent"].fillna(0) + f[
        "cust_sms_click_rate"
    ].fillna(0) * f["cust_sms_sent"].fillna(0)
    train = f["part"] == "train"
    pooled = clicks[train].sum() / sent[train].sum()
    f["sends"], f["clicks"] = sent, clicks
    f["click_rate_shrunk"] = np.where(sent > 0, (clicks + 10 * pooled) / (sent + 10), np.nan)
    own = f["cust_recoveries_total"].fillna(0) * (1 - f["cust_recovery_by_retry_share"].fillna(1))
    earlier = f["cust_failures_total"] - 1
    f["own_recovery_per_failure"] = np.where(earlier > 0, own / earlier.clip(lower=1), np.nan)
    msgs = history.messages
    att = history.attempts
    own_att = att[att["initiated_by"] == "customer"]
    paid = own_att[own_att["outcome"] == "succeeded"]
    f["opens"] = _as_of_count(f, msgs["invoice_id"].map(owner), msgs["opened_at"])
    sends_raw = _as_of_count(f, msgs["invoice_id"].map(owner), msgs["sent_at"])
    f["open_rate"] = np.where(sends_raw > 0, f["opens"] / np.maximum(sends_raw, 1), np.nan)
    f["own_attempts"] = _as_of_count(f, own_att["invoice_id"].map(owner), own_att["attempted_at"])
    f["own_payments"] = _as_of_count(f, paid["invoice_id"].map(owner), paid["attempted_at"])
    # mean log hours from a failure to the customer's own payment, over earlier invoices
    first = paid.sort_values("attempted_at", kind="stable").drop_duplicates("invoice_id")
    due = pd.to_datetime(
        first["invoice_id"].map(history.invoices.set_index("invoice_id")["due_at"])
    )
    hours = (pd.to_datetime(first["attempted_at"], utc=True) - due).dt.total_seconds() / 3600
    events = pd.DataFrame(
        {
            "customer": first["invoice_id"].map(owner).to_numpy(),
            "at": pd.to_datetime(first["attempted_at"].to_numpy(), utc=True),
            "log_h": np.log1p(hours.clip(lower=0).to_numpy()),
        }
    ).sort_values("at", kind="stable")
    grouped = events.groupby("customer")
    events["mean"] = grouped["log_h"].cumsum() / (grouped.cumcount() + 1)
    query = f[["customer", "t"]].reset_index().sort_values("t", kind="stable")
    found = pd.merge_asof(
        query, events, left_on="t", right_on="at", by="customer", allow_exact_matches=False
    )
    f["log_hours_to_own_payment"] = found.set_index("index")["mean"].reindex(f.index).to_numpy()
    return f, x


def print_inputs(f: pd.DataFrame, model) -> None:
    test = f[f["part"] == "test"]
    gain = pd.Series(model.booster.feature_importance("gain"), index=model.booster.feature_name())
    gain = gain / gain.sum()
    names = [
        "cust_email_click_rate",
        "cust_sms_click_rate",
        "channel_click_rate",
        "hour_click_rate",
        "cust_email_sent",
        "cust_activity",
        "cust_recovery_rate",
        "cust_recovery_by_retry_share",
        "cust_last_recovery_by_retry",
        "cust_recoveries_total",
        "cust_payments",
        "cust_failures_total",
        "cust_tenure_days",
        "sends",
        "clicks",
        "click_rate_shrunk",
        *SELF_PAY,
        "opens",
        "open_rate",
        "log_hours_to_own_payment",
    ]
    table = []
    for name in names:
        value = test[name]
        known = value.notna()
        rho = spearmanr(value[known], test.loc[known, "engagement"]).statistic
        table.append(
            {
                "input": name,
                "rho engagement": round(float(rho), 3),
                "rows with a value": round(float(known.mean()), 3),
                "rows non-zero": round(float((known & (value != 0)).mean()), 3),
                "gain share": round(float(gain[name]), 4) if name in gain else None,
            }
        )
    print(f"held-out message rows: {len(test):,}")
    print(pd.DataFrame(table).to_string(index=False), "\n")


def refits(f: pd.DataFrame, x: pd.DataFrame, model) -> None:
    """The message trees refitted without and with the candidates (diagnostic refits)."""
    x = x.copy()
    for name, values in model.rate_columns(lambda n: x[n].to_numpy()).items():
        x[name] = values
    for name, values in model.categories.items():
        x[name] = pd.Categorical(
            x[name].astype(object).where(x[name].notna(), None), categories=values
        )
    skip = ("monotone_constraints", "categorical_column", "num_iterations")
    settings = {k: v for k, v in model.booster.params.items() if k not in skip}
    y, part = f["y"].to_numpy(), f["part"].to_numpy()
    train, valid, test = part == "train", part == "valid", part == "test"
    weight = min((1 - y[train].mean()) / y[train].mean(), 5.0)
    quintile = pd.qcut(f.loc[test, "engagement"], 5, labels=False).to_numpy()
    boot = np.random.default_rng(0).integers(0, test.sum(), (500, test.sum()))
    base_loss = None
    print("refitted message trees: held-out log loss, vs the refit without candidates [95% CI]")
    for name, extra in (("without", []), ("+ own payments", SELF_PAY), ("+ clicks", CLICKS)):
        z = pd.concat([x[list(model.features)], f[extra]], axis=1)
        train_set = lgb.Dataset(
            z[train], y[train], weight=np.where(y[train] == 1, weight, 1.0), free_raw_data=False
        )
        valid_set = lgb.Dataset(z[valid], y[valid], reference=train_set)
        booster = lgb.train(
            settings,
            train_set,
            600,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(40, verbose=False)],
        )
        platt = LogisticRegression(C=1e6).fit(
            booster.predict(z[valid], raw_score=True)[:, None], y[valid]
        )
        p = platt.predict_proba(booster.predict(z[test], raw_score=True)[:, None])[:, 1]
        loss = -(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p))
        base_loss = loss if base_loss is None else base_loss
        lo, hi = np.percentile((loss - base_loss)[boot].mean(axis=1), [2.5, 97.5])
        by = pd.Series(p).groupby(quintile).mean().round(3).tolist()
        print(
            f"  {name}: {loss.mean():.5f} ({(loss - base_loss).mean():+.5f} [{lo:+.5f}, {hi:+.5f}]),"
            f" trees {booster.best_iteration}; by engagement quintile {by}"
        )
    observed = pd.Series(y[test]).groupby(quintile).mean().round(3).tolist()
    print(f"  observed by engagement quintile {observed}\n")


def ceiling(world, params, f: pd.DataFrame) -> None:
    """The truth with the engagement replaced by what the as-of history shows of it."""
    train, test = f["part"] == "train", f["part"] == "test"
    regression = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, random_state=0)
    regression.fit(f.loc[train, OBSERVABLE], f.loc[train, "engagement"])
    f = f.assign(estimate=regression.predict(f[OBSERVABLE]))
    r = np.corrcoef(f.loc[test, "estimate"], f.loc[test, "engagement"])[0, 1]
    print(f"engagement from the as-of inputs (fit on training rows): held-out correlation {r:.3f}")
    rows = held_out_rows(world, params)
    first = f[test].drop_duplicates("invoice").set_index("invoice")["estimate"]
    invoices = world.truth.invoices.copy()
    latent = invoices.set_index("invoice_id")["engagement"]
    invoices["engagement"] = invoices["invoice_id"].map(first).fillna(invoices["engagement"])
    seen = dataclasses.replace(world, truth=dataclasses.replace(world.truth, invoices=invoices))
    shown = held_out_rows(seen, params)[["message_id", "truth"]]
    rows = rows.merge(
        shown.rename(columns={"truth": "truth, engagement as shown"}), on="message_id"
    )
    quintile = pd.qcut(rows["event_id"].map(latent), 5, labels=False)
    columns = ["observed", "truth", "truth, engagement as shown", "model"]
    table = rows.groupby(quintile)[columns].mean().round(3)
    table["rows"] = rows.groupby(quintile).size()
    print(table.to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="default")
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("/tmp/message-diagnosis"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    world = cached_world(args.world, args.invoices, args.seed, params, args.out)
    print(f"{args.world}, {args.invoices:,} invoices, seed {args.seed}")
    f, x = message_rows(world, params)
    model = world.artifact.models.message
    print_inputs(f, model)
    refits(f, x, model)
    ceiling(world, params, f)


if __name__ == "__main__":
    main()

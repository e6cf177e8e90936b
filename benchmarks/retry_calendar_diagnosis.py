"""Along which calendar input the retry model follows the observed outcome only part of
the way (issue 13): a diagnostic, not a speed benchmark.

It simulates a zoo world once (cached in ``--out``, as ``first_retry_curve.py``), builds
the training rows once, fits the retry model per ``--variant NAME=JSON`` (overrides of
``train.model``, as ``screen_model_params.py``), and on the held-out (test-period) logged
retries prints, for each candidate calendar input and transform, the model's mean
probability against the observed rate and the world's exact truth per bin, and the
*residual slope*: a logistic regression of the outcome on the input with the model's
log-odds as a fixed offset (0 where the model follows the input all the way; > 0 where
the outcome moves with it more than the model says). All retries, then insufficient
funds only.

    python benchmarks/retry_calendar_diagnosis.py --world paydays --invoices 10000 \\
        --out /tmp/h60/sim --variant base={}
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from first_retry_curve import simulated
from scipy.optimize import minimize
from screen_model_params import variant_settings

from training.config.params import load_params
from training.declines.table import family_of, load_decline_table
from training.features.dunning_state import timeline_state
from training.models.datasets import history_timeline, training_data_for
from training.models.fit import fit_models
from training.models.split import TimeSplit
from training.simulator import behaviour

BINS = {
    "days_from_usual_payday": [-16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16],
    "weekdays_from_usual_payday": [-4, -2, -1, 0, 1, 2, 4],
    "days_to_month_end": [-1, 2, 5, 10, 20, 31],
    "local_day_of_month": [0, 3, 7, 14, 21, 25, 28, 31],
    "local_weekday": [-1, 0, 1, 2, 3, 4, 5, 6],
    "local_hour": [-1, 5, 8, 11, 14, 17, 20, 24],
    "cust_pay_day_strength": [-0.01, 0.2, 0.4, 0.6, 0.8, 1.0],
}


def transforms(x: pd.DataFrame) -> dict[str, np.ndarray]:
    """Candidate monotone transforms of the calendar inputs (none names a world)."""
    days = x["days_from_usual_payday"].to_numpy(dtype=float)
    weekdays = x["weekdays_from_usual_payday"].to_numpy(dtype=float)
    day_strength = x["cust_pay_day_strength"].to_numpy(dtype=float)
    week_strength = x["cust_pay_weekday_strength"].to_numpy(dtype=float)
    out = {}
    for width in (2.0, 4.0):
        kernel = np.exp(-0.5 * (days / width) ** 2)
        out[f"payday_gauss{width:g}"] = kernel * day_strength
    since = np.mod(days, 30.44)  # days since the usual payday, forward
    for scale in (3.0, 6.0):
        out[f"since_payday_exp{scale:g}"] = np.exp(-since / scale) * day_strength
    out["payweekday_close"] = (1 + np.cos(2 * np.pi * weekdays / 7.0)) / 2 * week_strength
    return out


def residual_slope(label: np.ndarray, p: np.ndarray, value: np.ndarray) -> tuple[float, float]:
    """Slope (and its standard error) of ``value`` in a logistic regression of ``label``
    with the model's log-odds as offset and an intercept; NaN values dropped."""
    keep = np.isfinite(value) & np.isfinite(p)
    y, v = label[keep].astype(float), value[keep]
    if len(y) < 50 or np.ptp(v) == 0:
        return float("nan"), float("nan")
    offset = np.log(np.clip(p[keep], 1e-6, 1 - 1e-6) / np.clip(1 - p[keep], 1e-6, 1))
    design = np.column_stack([np.ones(len(y)), v])

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = offset + design @ beta
        return float(np.sum(np.logaddexp(0.0, z) - y * z)), design.T @ (1 / (1 + np.exp(-z)) - y)

    fit = minimize(loss, np.zeros(2), jac=True, method="L-BFGS-B")
    q = 1 / (1 + np.exp(-(offset + design @ fit.x)))
    info = design.T @ (design * (q * (1 - q))[:, None])
    return float(fit.x[1]), float(np.sqrt(np.linalg.pinv(info)[1, 1]))


def retry_truth(history, truth, update, test_keys: set) -> pd.DataFrame:
    """P(success) of each logged retry of the ``test_keys`` invoices by the world's truth
    (card not updated), given the logged schedule before it; columns key, t, truth."""
    timeline = history_timeline(history)
    logged = timeline[timeline["key"].isin(test_keys) & (timeline["kind"] != "original")]
    schedule = pd.DataFrame(
        {
            "key": logged["key"].to_numpy(),
            "invoice_id": logged["key"].to_numpy(),
            "t": pd.to_datetime(logged["t"], utc=True).to_numpy(),
            "kind": logged["kind"].to_numpy(),
            "template": logged["template"].to_numpy(),
            "channel": logged["channel"].to_numpy(),
        }
    )
    schedule["t"] = pd.to_datetime(schedule["t"], utc=True)
    frame = behaviour.event_frame(schedule, truth.invoices)
    p, _ = behaviour.retry_success(frame, truth.world)
    frame["truth"] = p
    return frame.loc[frame["kind"] == "retry", ["key", "t", "truth"]]


def table(rows: pd.DataFrame, column: str, edges: list[float]) -> str:
    groups = pd.cut(rows[column], edges)
    means = rows.groupby(groups, observed=True)[["model", "observed", "truth"]].mean().round(3)
    means["rows"] = rows.groupby(groups, observed=True).size()
    return means.T.to_string()


def report(rows: pd.DataFrame, name: str) -> None:
    print(
        f"\n--- {name}: {len(rows):,} held-out retries, model {rows['model'].mean():.3f} "
        f"observed {rows['observed'].mean():.3f} truth {rows['truth'].mean():.3f}"
    )
    label, p = rows["observed"].to_numpy(), rows["model"].to_numpy()
    slopes = []
    candidates = {c: rows[c].to_numpy(dtype=float) for c in BINS}
    candidates.update(transforms(rows))
    for column, values in candidates.items():
        slope, error = residual_slope(label, p, values)
        slopes.append((column, slope, error))
    print("residual slope (log-odds per unit, model's log-odds as offset):")
    for column, slope, error in slopes:
        print(f"  {column:28s} {slope:+.3f} ± {error:.3f}  (z {slope / error:+.1f})")
    for column, edges in BINS.items():
        print(f"\n{column}\n{table(rows, column, edges)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="paydays")
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--variant", action="append", required=True, help="NAME=JSON")
    parser.add_argument("--out", type=Path, default=Path("/tmp/retry-calendar"))
    args = parser.parse_args()

    params = load_params(args.params)
    history, truth = simulated(args.world, args.invoices, args.seed, params, args.out)
    update = params.retry_rules.update_requests
    data = training_data_for(history, params, load_decline_table())
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    test = np.asarray(split.assign(data.retry.due_at) == "test")
    timeline = history_timeline(history)
    meta = timeline.loc[timeline_state(timeline, update).index]
    meta = meta[(meta["kind"] == "retry").to_numpy()]
    keys = meta["key"].to_numpy()[test]
    times = pd.to_datetime(meta["t"], utc=True).to_numpy()[test]
    true = retry_truth(history, truth, update, set(keys))
    x = data.retry.features[test].reset_index(drop=True)
    print(f"{args.world}, {args.invoices:,} invoices, seed {args.seed}")
    for variant in args.variant:
        label, overrides, settings = variant_settings(params.train, variant)
        started = time.perf_counter()
        fitted, metrics, predictions = fit_models(data, split, settings, ("retry",))
        m = metrics["retry"]
        print(
            f"\n== {label} {overrides} (fit {time.perf_counter() - started:.0f}s) retry held-out "
            f"log loss {m['log_loss']:.5f} AUC {m['auc']:.4f} cal {m['calibration_error']:.4f}"
        )
        effect = fitted["retry"].count_effect
        if effect is not None:
            print(f"slope: {effect.describe()}")
        for calendar in fitted["retry"].calendar_effects:
            print(f"calendar effect: {calendar.describe()}")
        rows = x.copy()
        rows["model"] = predictions["retry"][1]
        rows["observed"] = predictions["retry"][0]
        rows["key"], rows["t"] = keys, pd.to_datetime(times, utc=True)
        rows = rows.merge(true, on=["key", "t"], how="left", validate="one_to_one")
        report(rows, "all")
        funds = family_of(rows["inv_decline_category"].astype(object)) == "insufficient_funds"
        report(rows[funds.to_numpy()], "insufficient funds")


if __name__ == "__main__":
    main()

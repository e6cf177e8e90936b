"""What a bound on each template's logged hours removes from the learned plans (issue 13).

A diagnostic, not a speed benchmark. On one zoo world (simulated and trained as
``smartretry zoo`` does with params.yaml, or read back from ``--cache``) it prints

The world is trained with ``train.model.template_time_support`` off (the unbounded
plan is the model's own), the rest from params.yaml.

1. each message template's band: the ``hours_since_failure`` of the message model's
   training rows (quantiles), and the bounds every variant below draws from them;
2. for the held-out failures the zoo compares, the learned plan without a bound (the
   trained model as it is) and with each variant of ``TemplateSupport``: the messages
   of the unbounded plan the variant leaves out, by template, decline family and hours
   since the failure (with the models' response probability), and each plan's exact
   recovery (the world's truth) by family, with its calibration by decile.

    python benchmarks/template_band_diagnosis.py --world other_team --invoices 20000 --seed 7
"""

from __future__ import annotations

import argparse
import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from training.config.params import Params, load_params
from training.core.frames import Schedules
from training.declines.table import family_of, load_decline_table
from training.evaluation import run
from training.evaluation.truth_eval import truth_recovery
from training.evaluation.zoo import simulate_and_train
from training.models.datasets import build_training_data
from training.models.split import TimeSplit
from training.models.template_support import TemplateSupport

HOUR_BUCKETS = [-1, 6, 12, 24, 36, 48, 72, 96, 121, 168, 1e9]


def without_bounds(params: Params) -> Params:
    """``params`` with ``train.model.template_time_support`` off: the trained world is
    main's before h96 (the variants below put the bounds on its message model)."""
    model = params.train.model.model_copy(update={"template_time_support": None})
    return params.model_copy(update={"train": params.train.model_copy(update={"model": model})})


def load(args: argparse.Namespace):
    """The trained world and the message model's training rows (template, hours)."""
    cache = args.cache / f"{args.world}-{args.invoices}-{args.seed}-bands.pkl"
    if cache.exists():
        with cache.open("rb") as f:
            return pickle.load(f)
    params = without_bounds(load_params())
    world = simulate_and_train(args.world, args.invoices, args.seed, params, args.out)
    update = params.retry_rules.update_requests
    data = build_training_data(
        world.history,
        load_decline_table(),
        params.train.window_days,
        update,
        active_hour=params.train.features.active_hour,
    )
    split = TimeSplit.from_due_dates(world.history.invoices["due_at"], params.train)
    train = np.asarray(split.assign(data.message.due_at) == "train")
    rows = data.message.features.loc[train, ["template", "hours_since_failure"]].copy()
    rows["template"] = rows["template"].astype(str)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with cache.open("wb") as f:
        pickle.dump((world, rows), f)
    return world, rows


def variants(rows: pd.DataFrame) -> dict[str, TemplateSupport | None]:
    """The bounds compared: none (main), h92's lower side at 24 h, and margins scaled to
    each template's band (``TemplateSupport.fit``'s ``width_fraction``)."""
    out: dict[str, TemplateSupport | None] = {"none": None}
    out["lower 24"] = TemplateSupport.fit(rows, 24.0, "lower")
    for fraction in (0.5, 0.6, 0.75, 1.0):
        out[f"lower 24, {fraction} x width"] = TemplateSupport.fit(rows, 24.0, "lower", fraction)
    return out


def plan_rows(sample: pd.DataFrame, families: np.ndarray, frame: pd.DataFrame) -> pd.DataFrame:
    """The planned messages with their hours since the failure and decline family."""
    messages = frame.copy()
    failed = sample.set_index("event_id")["failed_at"]
    messages["hours"] = (
        pd.to_datetime(messages["send_at"], utc=True)
        - pd.to_datetime(messages["event_id"].map(failed), utc=True)
    ).dt.total_seconds() / 3600
    family = pd.Series(families, index=sample["event_id"].to_numpy())
    messages["family"] = messages["event_id"].map(family).to_numpy()
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="other_team")
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("/tmp/template-band-diagnosis"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/template-band-diagnosis"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pd.set_option("display.width", 200)
    params = without_bounds(load_params())
    world, rows = load(args)
    hours = rows["hours_since_failure"].astype(float)
    bands = hours.groupby(rows["template"]).describe(percentiles=[0.01, 0.05, 0.1, 0.5, 0.9])
    print(f"== {args.world}/{args.seed}: message training rows' hours since the failure")
    print(bands.round(1).to_string())
    decider = world.artifact.decider()
    held = run.held_out_events(world.history, world.artifact, params)
    sample = run.comparison_sample(held, params.evaluate)
    features = decider.scorer.event_features(sample, None)
    categories = decider.rules.decide_many(sample, None)["category"].reset_index(drop=True)
    families = family_of(categories).to_numpy()
    fixed = run.policy_schedules(decider, sample)["fixed"]
    model = decider.scorer.models.message
    base_rows = None
    for name, support in variants(rows).items():
        if support is not None:
            lower, _ = support.bounds(np.array(support.templates, dtype=object))
            print(
                f"\n-- {name}: lower bounds "
                + ", ".join(f"{t} {b:.0f}" for t, b in zip(support.templates, lower, strict=True))
            )
        model.template_support = support
        plan = decider.plan(sample, None, explore=False)
        frame = plan.messages.frame()
        schedules = Schedules(
            plan.retries.frame(), frame[["event_id", "send_at", "template", "channel"]]
        )
        truth = truth_recovery(world.truth, sample, schedules).to_numpy()
        estimates = run.model_estimates(
            decider, sample, features, {"learned": schedules, "fixed": fixed}
        )
        c = run._calibration(estimates["learned"].to_numpy(), truth)
        planned = plan_rows(sample, families, frame)
        by_family = pd.Series(truth).groupby(families).mean()
        print(
            f"[{name}] truth recovery {truth.mean():.4f}, calibration {c['binned_mae']:.4f}; "
            "by family " + ", ".join(f"{f} {100 * v:.1f}" for f, v in by_family.items())
        )
        if support is None:
            base_rows = planned
            continue
        lower, _ = support.bounds(base_rows["template"].to_numpy())
        removed = base_rows[base_rows["hours"] < lower]
        print(f"  unbounded plan's messages below this bound: {len(removed)} of {len(base_rows)}")
        if len(removed):
            removed = removed.assign(
                bucket=pd.cut(removed["hours"], HOUR_BUCKETS), p=removed["response_probability"]
            )
            table = removed.groupby(["template", "family"], observed=True).agg(
                messages=("p", "size"), p=("p", "mean"), hours=("hours", "median")
            )
            print(table.round(3).to_string())
            print(removed.groupby(["template", "bucket"], observed=True).size().to_string())
        now = planned.groupby(["family", "template"]).size().unstack(fill_value=0)
        was = base_rows.groupby(["family", "template"]).size().unstack(fill_value=0)
        print("  planned messages by family and template, unbounded -> this variant")
        print(
            (
                was.astype(str) + " -> " + now.reindex_like(was).fillna(0).astype(int).astype(str)
            ).to_string()
        )
    model.template_support = None


if __name__ == "__main__":
    main()

"""`smartretry ope-coverage`: how often the off-policy intervals hold the truth, over
worlds of the zoo and seeds.

Per (world, seed): simulate, read through the contract, train with the product's
settings, then run exactly the off-policy estimates of `smartretry evaluate` (the menu
estimate and the first-retry timing estimate, the latter once per weighting of the first
retries asked for, all from the same history and model) and set each interval against
the estimand's exact value. Skips the oracle and the policy comparison, which coverage
does not need. The tables are rewritten after every pair, so a partial run is readable.

``logged_by="product"``: the estimates read a second period the trained decider itself
dunned with exploration on, once per first-retry-day rate
(:mod:`training.evaluation.ope_product_logging`). On those logs the first-retry timing
estimand is reported (the support checks refuse it: not identified by per-customer
clock times) beside the first retry's *day*
(:mod:`training.evaluation.ope_first_retry_day`), which they identify: the served
policy's (smoothing 0) and a smoothed one (``evaluate.timing_day_smoothing``). The menu
estimate is not run: it refuses per-decision propensities by construction.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from training.config.params import Params
from training.contract.history import History
from training.evaluation.ope_checks import (
    MENU_ESTIMATORS,
    TIMING_ESTIMATORS,
    block_checks,
    coverage,
    timing_checks,
)
from training.evaluation.ope_day_eval import day_estimates
from training.evaluation.ope_first_retry import (
    Propensity,
    learn_support,
    read_first_retries,
    target_distribution,
)
from training.evaluation.ope_product_logging import (
    ProductRest,
    exploring_decider,
    product_logged_history,
)
from training.evaluation.ope_timing_eval import (
    learned_first_retry_hours,
    timing_estimates_by_weighting,
)
from training.evaluation.run import held_out_events, off_policy_metrics, off_policy_sample
from training.evaluation.zoo import simulate_and_train
from training.policy.decider import ModelDecider

log = logging.getLogger(__name__)

Logging = Literal["team", "product"]
"""Whose history the estimates read: the world's simulated team, or the product's own."""


def world_checks(
    name: str,
    invoices: int,
    seed: int,
    params: Params,
    out: Path,
    weightings: Sequence[Propensity] = ("logged",),
) -> list[dict]:
    """The off-policy checks of one (world, seed): the menu's, then the first-retry
    timing's once per weighting."""
    world = simulate_and_train(name, invoices, seed, params, out / f"{name}-{seed}")
    decider = world.artifact.decider()
    held = held_out_events(world.history, world.artifact, params)
    events = off_policy_sample(held, params.evaluate)
    log.info("[%s/%d] off-policy estimates on %d held-out invoices", name, seed, len(events))
    menu, _ = off_policy_metrics(decider, world.history, events, params, world.truth)
    timing = timing_estimates_by_weighting(
        decider,
        world.history,
        events,
        params.train.window_days,
        params.evaluate,
        weightings,
        world.truth,
    )
    rows = block_checks("menu", menu, MENU_ESTIMATORS)
    for weighting in weightings:
        rows += timing_checks(timing[weighting])
    return [{"world": name, "seed": seed, **row} for row in rows]


def product_world_checks(
    name: str,
    invoices: int,
    seed: int,
    params: Params,
    out: Path,
    weightings: Sequence[Propensity] = ("estimated",),
    day_rates: Sequence[float] = (0.05,),
) -> list[dict]:
    """The first-retry timing and first-retry day checks of one (world, seed) on the
    product's own logs: trained on the team's history, the decider (exploring the first
    retry's day at each rate of ``day_rates``) duns the held-out failures, and the
    estimates read what it logged; the truth keeps the rest of the dunning as the product
    did it."""
    world = simulate_and_train(name, invoices, seed, params, out / f"{name}-{seed}")
    target = world.artifact.decider()
    held = held_out_events(world.history, world.artifact, params)
    events = off_policy_sample(held, params.evaluate)
    window = params.train.window_days
    rows: list[dict] = []
    for rate in day_rates:
        logger = exploring_decider(target, rate)
        folder = out / f"{name}-{seed}" / f"product-{rate:g}"
        logged = product_logged_history(
            logger, world.history, events, world.truth, seed, folder, params.validate_
        )
        log.info("[%s/%d] product-logged, day rate %g: %d invoices", name, seed, rate, len(events))
        rest = ProductRest(logger, events)
        timing = timing_estimates_by_weighting(
            target, logged, events, window, params.evaluate, weightings, world.truth, rest
        )
        produced = produced_share(target, logged, events, window, params, rest)
        label = f"product, day rate {rate:g}"
        for weighting in weightings:
            for row in timing_checks(timing[weighting]):
                rows.append({"world": name, "seed": seed, **row, "logging": label, **produced})
        for smoothing in dict.fromkeys((0.0, params.evaluate.timing_day_smoothing)):
            day = day_estimates(
                target, logged, events, window, params.evaluate, rest, smoothing, world.truth
            )
            estimand = "first-retry day" + (f", smoothed {smoothing:g}" if smoothing else "")
            for row in block_checks(estimand, day, TIMING_ESTIMATORS):
                rows.append(
                    {"world": name, "seed": seed, **row, "weighting": "logged", "logging": label}
                )
    return rows


def produced_share(
    target: ModelDecider,
    logged: History,
    events: pd.DataFrame,
    window: int,
    params: Params,
    rest: ProductRest,
) -> dict[str, float]:
    """How much of the target's mass sits on first retries the product's exploration can
    log for that very event (the rest the estimators can only borrow from other events),
    and the share of units the exploration moved off the searched first retry."""
    settings = params.evaluate
    log_all = read_first_retries(logged, window)
    support = learn_support(
        log_all, settings.timing_min_offset_support, settings.timing_parts_per_day
    )
    hours = learned_first_retry_hours(target, logged, events)
    planned = ~np.isnan(hours)
    if len(support.offsets) == 0 or not planned.any():
        return {}
    pi = target_distribution(hours[planned], support, settings.timing_smoothing)
    unit, offset = np.nonzero(pi > 0)
    ids = events["invoice_id"].to_numpy()[planned]
    can = rest.produced(ids[unit], support.offsets[offset])
    return {"target_mass_produced": float((pi[unit, offset] * can).sum() / len(pi))}


def run_ope_coverage(
    worlds: list[str],
    seeds: list[int],
    invoices: int,
    params: Params,
    out: Path,
    weightings: Sequence[Propensity] = ("logged",),
    logged_by: Logging = "team",
    day_rates: Sequence[float] = (0.05,),
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """Every (world, seed); writes ope_coverage.json and ope_coverage.md to ``out``
    after every pair (``pairs_done`` of ``pairs`` in the json). ``logged_by="product"``:
    :func:`product_world_checks`, once per rate of ``day_rates``."""
    out.mkdir(parents=True, exist_ok=True)
    pairs = [(name, seed) for name in worlds for seed in seeds]
    rows: list[dict[str, Any]] = []
    summary: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for done, (name, seed) in enumerate(pairs, start=1):
        pair_started = time.perf_counter()
        if logged_by == "product":
            rows += product_world_checks(name, invoices, seed, params, out, weightings, day_rates)
        else:
            rows += world_checks(name, invoices, seed, params, out, weightings)
        summary = coverage(rows)
        write_tables(out, rows, summary, done, len(pairs))
        log.info(
            "pair %d/%d (%s, seed %d) done in %.0f s (%.0f s in all); covered so far: %s",
            done,
            len(pairs),
            name,
            seed,
            time.perf_counter() - pair_started,
            time.perf_counter() - started,
            "; ".join(f"{k} {c['covered']}/{c['intervals']}" for k, c in summary.items()),
        )
    return rows, summary


def write_tables(
    out: Path,
    rows: list[dict[str, Any]],
    summary: dict[str, dict[str, float]],
    done: int,
    pairs: int,
) -> None:
    """ope_coverage.json and ope_coverage.md as they stand after ``done`` pairs."""
    (out / "ope_coverage.json").write_text(
        json.dumps(
            {"pairs_done": done, "pairs": pairs, "rows": rows, "coverage": summary},
            indent=2,
            default=float,
        )
        + "\n"
    )
    head = f"Pairs done: {done} of {pairs}.\n\n" if done < pairs else ""
    (out / "ope_coverage.md").write_text(head + coverage_markdown(rows, summary) + "\n")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def coverage_markdown(rows: list[dict[str, Any]], summary: dict[str, dict[str, float]]) -> str:
    """Coverage per estimand, estimator and weighting, then every interval."""
    lines = [
        "| estimand / estimator / weighting | intervals | cover the truth | share "
        "| mean width (pts) | logs could not support |",
        "|---|---|---|---|---|---|",
    ]
    for key, cell in summary.items():
        empty = cell["intervals"] == 0
        share = "-" if empty else _pct(cell["share"]) + "%"
        width = "-" if empty else _pct(cell["mean_width"])
        lines.append(
            f"| {key} | {cell['intervals']} | {cell['covered']} | {share} | {width} "
            f"| {cell['declined']} |"
        )
    lines += [
        "",
        "| world | seed | estimand | estimator | weighting | estimate [95% CI] | truth | covers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head = f"| {r['world']} | {r['seed']} | {r['estimand']}"
        weighting = ", ".join(str(r[k]) for k in ("weighting", "logging") if k in r) or "-"
        if "estimator" not in r:
            lines.append(f"{head} | - | {weighting} | {r['note']} | - | - |")
        elif "covers" in r:
            lines.append(
                f"{head} | {r['estimator']} | {weighting} | "
                f"{_pct(r['value'])} [{_pct(r['lower'])}, {_pct(r['upper'])}] | "
                f"{_pct(r['truth'])} | {'yes' if r['covers'] else '**no**'} |"
            )
        else:
            lines.append(
                f"{head} | {r['estimator']} | {weighting} | "
                f"cannot estimate: {r['cannot_estimate']} | {_pct(r['truth'])} | - |"
            )
    return "\n".join(lines)

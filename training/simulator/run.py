"""`smartretry simulate`: a history in the data contract plus its ground truth."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from training.config.params import SimulateParams
from training.contract.history import History
from training.simulator.logging_policy import (
    LoggingPolicy,
    draw_plans,
    planned_messages,
    planned_retries,
)
from training.simulator.population import sample_customers, sample_invoices
from training.simulator.sampling import realize
from training.simulator.truth import GroundTruth, build_truth_frame
from training.simulator.world import COUNTRIES, WorldConfig


@dataclass
class SimulationResult:
    history: History
    truth: GroundTruth
    seconds: float

    def summary(self) -> str:
        inv = self.history.invoices
        att = self.history.attempts
        recovered = att.loc[(att["outcome"] == "succeeded"), "invoice_id"].nunique()
        by_merchant = att.loc[
            (att["outcome"] == "succeeded") & (att["initiated_by"] == "merchant"), "invoice_id"
        ].nunique()
        return (
            f"simulated {len(inv):,} invoices of {len(self.history.customers):,} customers in "
            f"{self.seconds:.1f}s: {len(att):,} attempts, {len(self.history.messages):,} messages; "
            f"recovered {recovered / max(len(inv), 1):.1%} "
            f"({by_merchant / max(len(inv), 1):.1%} by retry)"
        )


def simulate_history(
    settings: SimulateParams,
    world: WorldConfig | None = None,
    policy: LoggingPolicy | None = None,
    progress: bool = False,
) -> SimulationResult:
    """Simulate ``settings.invoices`` failed invoices; deterministic for ``settings.seed``."""
    started = time.perf_counter()
    world = world or WorldConfig()
    policy = policy or LoggingPolicy()
    rng = np.random.default_rng(settings.seed)
    start = pd.Timestamp(settings.start, tz="UTC")
    window_hours = settings.window_days * 24.0
    steps = tqdm(total=4, desc="simulate", disable=not progress, unit="step")

    n_customers = max(1, int(round(settings.invoices / world.invoices_per_customer)))
    customers, traits = sample_customers(n_customers, start, world, rng)
    invoices, invoice_traits = sample_invoices(
        customers, traits, settings.invoices, start, settings.months, rng
    )
    customers = customers[customers["customer_id"].isin(invoices["customer_id"])]
    traits = traits[traits["customer_id"].isin(customers["customer_id"])]
    steps.update()

    medians = pd.Series({k: v.amount_median_minor for k, v in COUNTRIES.items()})
    truth_frame = build_truth_frame(
        invoices, customers, traits, invoice_traits, world, window_hours, medians
    )
    truth = GroundTruth(truth_frame, world, window_hours, policy)
    steps.update()

    retry_plan, message_plan = draw_plans(len(invoices), policy, rng)
    by_invoice = truth_frame.set_index("invoice_id").loc[invoices["invoice_id"]]
    retries = planned_retries(invoices, retry_plan, policy, window_hours, rng)
    messages = planned_messages(
        invoices,
        by_invoice["timezone"],
        by_invoice["sms_opt_in"],
        message_plan,
        policy,
        window_hours,
        (world.quiet_start_hour, world.quiet_end_hour),
        rng,
    )
    steps.update()
    realized = realize(truth, invoices, retries, messages, rng)
    steps.update()
    steps.close()
    history = History(
        customers=customers.reset_index(drop=True),
        invoices=invoices.reset_index(drop=True),
        attempts=realized.attempts,
        messages=realized.messages,
    )
    return SimulationResult(history, truth, time.perf_counter() - started)


def run_simulation(settings: SimulateParams, out: Path, truth_out: Path | None = None) -> str:
    """Simulate ``settings.world`` and write the history to ``out``, the ground truth
    beside it."""
    from training.contract.io import write_history
    from training.simulator.zoo import zoo_world

    chosen = zoo_world(settings.world)
    result = simulate_history(settings, chosen.world, chosen.policy, progress=True)
    truth_out = truth_out or out.with_name(out.name + "-truth")
    write_history(result.history, out, fmt=settings.format)
    result.truth.save(truth_out)
    return f"{result.summary()}\nhistory: {out}\nground truth: {truth_out}"

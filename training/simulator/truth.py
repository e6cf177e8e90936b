"""The ground truth of a simulated history: exact recovery probability of any schedule.

For one invoice, a schedule is a time-ordered list of retries and messages. The world
is a two-state chain between events (card updated or not) that ends when the invoice is
recovered; customers may also pay unprompted, independently of the schedule. So

    P(recovered) = 1 - P(no unprompted payment in the window) * P(every event fails)

and the second factor is a forward pass over the events, carried out here for many
schedules at once (one step per event *rank*, vectorized over schedules).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.simulator import behaviour
from training.simulator.localtime import naive_utc
from training.simulator.logging_policy import LoggingPolicy
from training.simulator.world import WorldConfig

TRUTH_FILE = "invoices.parquet"
WORLD_FILE = "world.json"


@dataclass
class GroundTruth:
    """Latent traits per invoice plus the world's parameters."""

    invoices: pd.DataFrame
    world: WorldConfig
    window_hours: float
    logging: LoggingPolicy | None = None  # the team's own dunning that produced the history

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.invoices.to_parquet(folder / TRUTH_FILE, index=False)
        payload: dict = {
            "window_hours": self.window_hours,
            "world": self.world.model_dump(mode="json"),
        }
        if self.logging is not None:
            payload["logging_policy"] = self.logging.model_dump(mode="json")
        (folder / WORLD_FILE).write_text(json.dumps(payload, indent=2))

    @classmethod
    def load(cls, folder: Path) -> GroundTruth:
        payload = json.loads((Path(folder) / WORLD_FILE).read_text())
        return cls(
            invoices=pd.read_parquet(Path(folder) / TRUTH_FILE),
            world=WorldConfig.model_validate(payload["world"]),
            window_hours=float(payload["window_hours"]),
            logging=(
                LoggingPolicy.model_validate(payload["logging_policy"])
                if "logging_policy" in payload
                else None
            ),
        )

    def schedule_frame(self, retries: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
        """Events of many schedules with their true probabilities (see module docs).

        retries: key, invoice_id, at; messages: key, invoice_id, send_at, channel, template.
        Events outside the invoice's window (before the failure or after its end) are
        dropped: they cannot recover the invoice within the window.
        """
        parts = [
            pd.DataFrame(
                {
                    "key": retries["key"].to_numpy(),
                    "invoice_id": retries["invoice_id"].to_numpy(),
                    "t": pd.to_datetime(retries["at"], utc=True).to_numpy(),
                    "kind": "retry",
                    "template": None,
                    "channel": None,
                }
            ),
            pd.DataFrame(
                {
                    "key": messages["key"].to_numpy(),
                    "invoice_id": messages["invoice_id"].to_numpy(),
                    "t": pd.to_datetime(messages["send_at"], utc=True).to_numpy(),
                    "kind": "message",
                    "template": messages["template"].to_numpy(),
                    "channel": messages["channel"].to_numpy(),
                }
            ),
        ]
        nonempty = [p for p in parts if len(p)]
        if not nonempty:
            return pd.DataFrame()
        schedule = pd.concat(nonempty, ignore_index=True)
        schedule["t"] = pd.to_datetime(schedule["t"], utc=True)
        frame = behaviour.event_frame(schedule, self.invoices)
        inside = (frame["hours_since_failure"] >= 0) & (
            frame["hours_since_failure"] < self.window_hours
        )
        frame = frame[inside.to_numpy()].reset_index(drop=True)
        if frame.empty:
            return frame
        # sequence features must count only events that happen: recompute after the cut
        frame = behaviour.event_frame(
            frame[["key", "invoice_id", "t", "kind", "template", "channel"]], self.invoices
        )
        retry = (frame["kind"] == "retry").to_numpy()
        p0, p1 = behaviour.retry_success(frame, self.world)
        frame["p_retry_not_updated"] = np.where(retry, p0, 0.0)
        frame["p_retry_updated"] = np.where(retry, p1, 0.0)
        frame["p_response"] = np.where(retry, 0.0, behaviour.message_response(frame, self.world))
        frame["p_pay"] = np.where(retry, 0.0, behaviour.pay_given_response(frame, self.world))
        frame["updates_card"] = ~retry & behaviour.updates_card(frame)
        frame["update_hazard"] = behaviour.update_hazard_per_hour(frame, self.world)
        return frame

    def recovery_probability(
        self, keys: pd.DataFrame, retries: pd.DataFrame, messages: pd.DataFrame
    ) -> pd.Series:
        """Exact P(recovered within the window) per schedule ``key``.

        keys: key, invoice_id (one row per schedule, also for empty schedules).
        """
        if keys["key"].duplicated().any():
            raise ValueError("schedule keys must be unique")
        self_pay = keys["invoice_id"].map(self.invoices.set_index("invoice_id")["p_self_pay"])
        if self_pay.isna().any():
            missing = keys.loc[self_pay.isna(), "invoice_id"].iloc[0]
            raise KeyError(f"invoice {missing!r} has no ground truth")
        frame = self.schedule_frame(retries, messages)
        survive = pd.Series(1.0, index=keys["key"].to_numpy())
        if len(frame):
            survive.update(_forward_survival(frame))
        p = 1.0 - (1.0 - self_pay.to_numpy()) * survive.to_numpy()
        return pd.Series(p, index=keys["key"].to_numpy(), name="recovery_probability")


def _forward_survival(frame: pd.DataFrame) -> pd.Series:
    """P(no event of the schedule recovers the invoice), per key (rows sorted key, t)."""
    keys, key_index = np.unique(frame["key"].to_numpy(), return_inverse=True)
    rank = frame.groupby("key", sort=False).cumcount().to_numpy()
    t_hours = naive_utc(frame["t"]).astype("datetime64[s]").astype(np.int64) / 3600.0
    due_hours = naive_utc(frame["due_at"]).astype("datetime64[s]").astype(np.int64) / 3600.0
    m0 = np.ones(len(keys))
    m1 = np.zeros(len(keys))
    last = np.zeros(len(keys))
    first = rank == 0
    last[key_index[first]] = due_hours[first]
    retry = (frame["kind"] == "retry").to_numpy()
    p0 = frame["p_retry_not_updated"].to_numpy()
    p1 = frame["p_retry_updated"].to_numpy()
    r = frame["p_response"].to_numpy()
    q = frame["p_pay"].to_numpy()
    upd = frame["updates_card"].to_numpy().astype(float)
    hazard = frame["update_hazard"].to_numpy()
    for k in range(int(rank.max()) + 1):
        rows = np.flatnonzero(rank == k)
        g = key_index[rows]
        moved = m0[g] * (1.0 - np.exp(-hazard[rows] * (t_hours[rows] - last[g])))
        a0 = m0[g] - moved
        a1 = m1[g] + moved
        is_retry = retry[rows]
        resp, pay, up = r[rows], q[rows], upd[rows]
        stuck = a0 * resp * (1.0 - pay)
        m0[g] = np.where(is_retry, a0 * (1.0 - p0[rows]), a0 * (1.0 - resp) + stuck * (1.0 - up))
        m1[g] = np.where(is_retry, a1 * (1.0 - p1[rows]), a1 * (1.0 - resp * pay) + stuck * up)
        last[g] = t_hours[rows]
    return pd.Series(m0 + m1, index=keys)


def build_truth_frame(
    invoices: pd.DataFrame,
    customers: pd.DataFrame,
    customer_traits: pd.DataFrame,
    invoice_traits: pd.DataFrame,
    world: WorldConfig,
    window_hours: float,
    amount_median_minor: pd.Series,
) -> pd.DataFrame:
    """One row per invoice with everything the scorer needs."""
    frame = (
        invoices[
            [
                "invoice_id",
                "customer_id",
                "due_at",
                "amount_minor",
                "payment_method",
                "processor",
                "card_brand",
            ]
        ]
        .merge(invoice_traits.drop(columns="customer_id"), on="invoice_id", validate="one_to_one")
        .merge(
            customers[["customer_id", "timezone", "sms_opt_in", "country"]],
            on="customer_id",
            validate="many_to_one",
        )
        .merge(customer_traits, on="customer_id", validate="many_to_one")
    )
    frame["amount_median_minor"] = frame["country"].map(amount_median_minor).to_numpy()
    days = int(np.ceil(window_hours / 24.0))
    hazards = behaviour.self_pay_daily_hazard(frame, world, days)
    frame["p_self_pay"] = 1.0 - np.exp(-hazards.sum(axis=1))
    return frame

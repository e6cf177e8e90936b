"""Off-policy intervals on a history the product itself logged (issue 13, item 3).

A second period of a simulated world: its first failures are decided by the trained
decider with exploration on (``decide``, the API's call, batched), the decisions'
retries and messages, each with its own ``propensity``
(:mod:`training.policy.exploration`), are played out by the world's truth
(:func:`training.simulator.sampling.realize`) and written and read back through the
data contract, the same reader as any team's history.

The first-retry timing estimand (:mod:`training.evaluation.ope_first_retry`) keeps "the
rest of the dunning as the logging policy did it"; when the logging policy is the
product, that is :class:`ProductRest`: the searched schedule with its first retry held
at the offset, the later retries where the exploration puts them given that first retry
(every retry moved alike when the offset is one of the exploration's valid shifts, else
the first-retry-day rule: kept when ``min_spacing`` after the one before, else pushed
later by it, dropped past the window), the searched messages (no arm moves one). For an
offset this event's logging never produces (a first retry the exploration cannot put
there) the day rule is an extrapolation: :meth:`ProductRest.produced` says which.

:class:`ProductRest` also knows the logging's whole first-retry distribution per event
(the searched time, each valid shift, each other day the window allows, with the masses
of :mod:`training.policy.exploration`): :meth:`ProductRest.later_mass` is the probability
that the first retry came after a time, what a decision recovered before any retry needs
(:mod:`training.evaluation.ope_first_retry_day`); :meth:`ProductRest.first_retry_mass`
the probability of one exact time, which equals the logged row's ``propensity``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd

from training.config.params import ValidateParams
from training.contract.history import History
from training.contract.io import load_history, write_history
from training.core.arrays import cummax_in_group, group_first, rank_in_group
from training.core.localtime import DAY_NS, HOUR_NS, from_ns, to_ns
from training.core.randomness import seeded_process_rng
from training.policy.decider import ModelDecider
from training.policy.exploration import day_mass
from training.policy.retry_search import retry_windows
from training.simulator.sampling import realize
from training.simulator.truth import GroundTruth


def exploring_decider(decider: ModelDecider, day_rate: float) -> ModelDecider:
    """``decider`` with the first retry's day explored at ``day_rate`` (its other
    exploration settings kept)."""
    out = copy.copy(decider)
    out.config = decider.config.model_copy(update={"exploration_first_retry_day_rate": day_rate})
    return out


def planned_rows(events: pd.DataFrame, decider: ModelDecider) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The decider's answers to ``events`` (exploring as configured, drawing from the
    process's generator) as the simulator's planned rows: retries ``invoice_id, t,
    propensity`` and messages ``invoice_id, t, channel, template, propensity``."""
    decisions = decider.decide(events, None)
    invoice = events.set_index("event_id")["invoice_id"]
    retries, messages = decisions.retries, decisions.messages
    return (
        pd.DataFrame(
            {
                "invoice_id": retries["event_id"].map(invoice).to_numpy(),
                "t": pd.to_datetime(retries["at"], utc=True).array,
                "propensity": retries["propensity"].to_numpy(dtype=float),
            }
        ),
        pd.DataFrame(
            {
                "invoice_id": messages["event_id"].map(invoice).to_numpy(),
                "t": pd.to_datetime(messages["send_at"], utc=True).array,
                "channel": messages["channel"].to_numpy(),
                "template": messages["template"].to_numpy(),
                "propensity": messages["propensity"].to_numpy(dtype=float),
            }
        ),
    )


def product_logged_history(
    decider: ModelDecider,
    history: History,
    events: pd.DataFrame,
    truth: GroundTruth,
    seed: int,
    folder: Path,
    validate: ValidateParams | None = None,
) -> History:
    """The history of ``events``' invoices had the product (``decider``, exploring) dunned
    them: decided (the exploration's draws seeded by ``seed``), realized by the world's
    truth, written to ``folder`` in the data contract and read back (validated)."""
    with seeded_process_rng(seed):
        retries, messages = planned_rows(events, decider)
    invoices = history.invoices[history.invoices["invoice_id"].isin(events["invoice_id"])]
    realized = realize(truth, invoices, retries, messages, np.random.default_rng(seed))
    customers = history.customers[history.customers["customer_id"].isin(invoices["customer_id"])]
    logged = History(
        customers=customers.reset_index(drop=True),
        invoices=invoices.reset_index(drop=True),
        attempts=realized.attempts,
        messages=realized.messages,
    )
    write_history(logged, folder, fmt="parquet")
    read, _ = load_history(folder, validate)
    return read


class ProductRest:
    """The product's schedule given its first retry's offset (module docstring), for
    :func:`training.evaluation.ope_timing_eval.timing_truth` (``rest``)."""

    def __init__(self, decider: ModelDecider, events: pd.DataFrame) -> None:
        events = events.reset_index(drop=True)
        plan = decider.plan(events, None, explore=False)
        limits = decider.rules.limits
        _, self.start, self.end = retry_windows(
            events, plan.decisions, plan.messages, limits.update_requests, limits.min_spacing_hours
        )
        self.spacing = int(limits.min_spacing_hours * HOUR_NS)
        config = decider.config
        exploring = config.exploration_rate > 0
        self.shifts = (
            np.array(config.exploration_shifts_hours, dtype=np.int64) * HOUR_NS
            if exploring
            else np.zeros(0, dtype=np.int64)
        )
        self.days = exploring and config.exploration_first_retry_day_rate > 0
        self.invoice = pd.Index(events["invoice_id"].to_numpy())
        self.failed = to_ns(pd.to_datetime(events["failed_at"], utc=True))
        position = pd.Index(events["event_id"].to_numpy())
        self.retry_event = position.get_indexer(plan.retries.event_id)
        self.retry_at = plan.retries.at
        n = len(events)
        self.count = np.bincount(self.retry_event, minlength=n)
        first = group_first(self.retry_event)
        last = np.r_[first[1:], True] if len(first) else first
        self.first_row = np.zeros(n, dtype=np.int64)  # each event's first row
        self.first_row[self.retry_event[first]] = np.flatnonzero(first)
        self.first_at = np.zeros(n, dtype=np.int64)
        self.last_at = np.zeros(n, dtype=np.int64)
        self.first_at[self.retry_event[first]] = self.retry_at[first]
        self.last_at[self.retry_event[last]] = self.retry_at[last]
        messages = plan.messages.frame()
        self.messages = messages.assign(event=position.get_indexer(messages["event_id"]))
        self._masses(config.exploration_rate if exploring else 0.0, day_mass(config))

    def _masses(self, rate: float, mass: float) -> None:
        """Each event's first-retry masses, as :func:`training.policy.exploration.explore`
        draws them: per valid shift, per other allowed day, and the searched time's."""
        arms = 1 + len(self.shifts)
        self.shift_mass = rate / arms
        has = self.count > 0
        first, last = self.first_at[:, None] + self.shifts, self.last_at[:, None] + self.shifts
        self.valid = (first >= self.start[:, None]) & (last < self.end[:, None]) & has[:, None]
        self.valid &= self.shifts[None, :] != 0
        self.low = -np.floor_divide(self.first_at - self.start, DAY_NS)
        self.high = np.floor_divide(self.end - 1 - self.first_at, DAY_NS)
        days = np.maximum(self.high - self.low + 1 - ((self.low <= 0) & (self.high >= 0)), 0)
        days = np.where(has & self.days, days, 0)
        mass = mass if self.days else 0.0
        self.day_each = np.where(days > 0, mass / np.maximum(days, 1), 0.0)
        searched = 1.0 - rate - mass + self.shift_mass * (arms - self.valid.sum(axis=1))
        self.searched_mass = searched + np.where(days > 0, 0.0, mass)

    def _events(self, invoice_ids: np.ndarray) -> np.ndarray:
        event = self.invoice.get_indexer(invoice_ids)
        if (event < 0).any() or (self.count[event] == 0).any():
            raise ValueError("every schedule needs an event the decider retries")
        return event

    def _other_days(self, event: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """How many days in [low, high] other than the searched one the day arm allows."""
        low, high = np.maximum(low, self.low[event]), np.minimum(high, self.high[event])
        return np.maximum(high - low + 1, 0) - ((low <= 0) & (high >= 0))

    def later_mass(self, invoice_ids: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Per event, the probability that the logging put its first retry after ``at``
        (ns)."""
        event = self._events(invoice_ids)
        first = self.first_at[event]
        p = self.searched_mass[event] * (first > at)
        later = (first[:, None] + self.shifts[None, :]) > at[:, None]
        p = p + self.shift_mass * (self.valid[event] & later).sum(axis=1)
        after = np.floor_divide(at - first, DAY_NS) + 1  # the first day k with first + k d > at
        return p + self.day_each[event] * self._other_days(event, after, self.high[event])

    def first_retry_mass(self, invoice_ids: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Per event, the probability that the logging put its first retry at ``at`` (ns)."""
        event = self._events(invoice_ids)
        first = self.first_at[event]
        p = self.searched_mass[event] * (first == at)
        hits = first[:, None] + self.shifts[None, :] == at[:, None]
        p = p + self.shift_mass * (self.valid[event] & hits).sum(axis=1)
        day, rest = np.divmod(at - first, DAY_NS)
        return p + self.day_each[event] * ((rest == 0) & (self._other_days(event, day, day) > 0))

    def searched_first(self, invoice_ids: np.ndarray) -> np.ndarray:
        """Per event, the searched first retry (ns)."""
        return self.first_at[self._events(invoice_ids)]

    def day_range(self, invoice_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per event, the whole days from the searched first retry its window allows."""
        event = self._events(invoice_ids)
        return self.low[event], self.high[event]

    def at_days(
        self, invoice_ids: np.ndarray, days: np.ndarray, keys: np.ndarray
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The schedules with each first retry ``days`` whole days from the searched one
        (its clock time kept), the rest as the product does it (see :meth:`__call__`)."""
        event = self._events(invoice_ids)
        whole = np.round((self.first_at[event] - self.failed[event]) / HOUR_NS)
        return self(invoice_ids, whole + 24.0 * days, keys)

    def _moves(self, invoice_ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per schedule: its event, how far its first retry moves from the searched one
        (ns, the searched one's minute within the hour kept), whether that is a valid
        shift, and whether the exploration can put a first retry there."""
        event = self._events(invoice_ids)
        searched = self.first_at[event] - self.failed[event]
        whole = np.round(searched / HOUR_NS).astype(np.int64)
        move = (np.round(offsets).astype(np.int64) - whole) * HOUR_NS
        start, end = self.start[event], self.end[event]
        shifted = np.isin(move, self.shifts) & (move != 0)
        shifted &= (self.first_at[event] + move >= start) & (self.last_at[event] + move < end)
        first = self.first_at[event] + move
        day = self.days & (move % DAY_NS == 0) & (first >= start) & (first < end)
        return event, move, shifted, (move == 0) | shifted | day

    def produced(self, invoice_ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Whether the exploration can log a first retry at each offset for its event."""
        return self._moves(invoice_ids, offsets)[3]

    def __call__(
        self, invoice_ids: np.ndarray, offsets: np.ndarray, keys: np.ndarray
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        event, move, shifted, _ = self._moves(invoice_ids, offsets)
        n = self.count[event]
        schedule = np.repeat(np.arange(len(keys)), n)
        rank = rank_in_group(schedule)
        row = self.first_row[event][schedule] + rank
        at = self.retry_at[row]
        moved = at + move[schedule]
        new_at = np.where(rank == 0, moved, at)
        gap = rank * self.spacing
        pushed = cummax_in_group(new_at - gap, schedule) + gap
        new_at = np.where(shifted[schedule], moved, pushed)
        keep = new_at < self.end[event][schedule]
        retries = pd.DataFrame({"invoice_id": keys[schedule[keep]], "t": from_ns(new_at[keep])})
        per_key = pd.DataFrame({"key": keys, "event": event})
        messages = per_key.merge(self.messages, on="event", how="inner")
        return retries, pd.DataFrame(
            {
                "invoice_id": messages["key"].to_numpy(),
                "t": pd.to_datetime(messages["send_at"], utc=True),
                "channel": messages["channel"].to_numpy(),
                "template": messages["template"].to_numpy(),
            }
        )

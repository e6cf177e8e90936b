"""Score schedules with the trained models: per-event success and response
probabilities, and the expected recovery of a whole schedule.

    P(recovered) = 1 - P(no unprompted payment) * prod over events (1 - p_event)

where each retry's ``p`` comes from the retry model given everything scheduled before
it (earlier retries failed, messages sent), each message's from the message model, and
the unprompted part from the self-cure model's daily hazards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training.declines.table import DeclineTable
from training.features.customer import CustomerIndex
from training.features.frames import candidate_features, event_features, self_cure_features
from training.models.train import TrainedModels
from training.policy.timing import from_ns, to_ns


def past_rows(events: pd.DataFrame, previous_attempts: pd.DataFrame | None) -> pd.DataFrame:
    """The attempts already made per event: the first is the original charge."""
    ids = [events["event_id"].to_numpy()]
    times = [to_ns(events["failed_at"])]
    if previous_attempts is not None and len(previous_attempts):
        ids.append(previous_attempts["event_id"].to_numpy())
        times.append(to_ns(previous_attempts["attempted_at"]))
    rows = pd.DataFrame({"event_id": np.concatenate(ids), "ns": np.concatenate(times)})
    rows = rows.sort_values(["event_id", "ns"], kind="stable")
    first = ~rows["event_id"].duplicated().to_numpy()
    return pd.DataFrame(
        {
            "event_id": rows["event_id"].to_numpy(),
            "t": from_ns(rows["ns"].to_numpy()),
            "kind": np.where(first, "original", "retry").astype(object),
        }
    )


def build_timeline(
    keys: pd.DataFrame,
    past: pd.DataFrame,
    retries: pd.DataFrame,
    messages: pd.DataFrame,
    candidate_kinds: tuple[str, ...] = ("retry", "message"),
) -> pd.DataFrame:
    """Timelines of many schedules (``keys``: key, event_id) over the events' pasts.

    retries: key, at; messages: key, send_at, template, channel. Proposed rows of the
    kinds in ``candidate_kinds`` are candidates (get probabilities); the past never is.
    Built column by column with numpy (this runs in the policy's inner loop).
    """
    history = keys[["key", "event_id"]].merge(past, on="event_id", how="left")
    owner = pd.Series(keys["event_id"].to_numpy(), index=keys["key"].to_numpy())
    n_h, n_r, n_m = len(history), len(retries), len(messages)
    nothing = np.full(n_h + n_r, None, dtype=object)
    return pd.DataFrame(
        {
            "key": np.concatenate(
                [history["key"].to_numpy(), retries["key"].to_numpy(), messages["key"].to_numpy()]
            ),
            "event_id": np.concatenate(
                [
                    history["event_id"].to_numpy(),
                    owner.reindex(retries["key"].to_numpy()).to_numpy(),
                    owner.reindex(messages["key"].to_numpy()).to_numpy(),
                ]
            ),
            "t": from_ns(
                np.concatenate([to_ns(history["t"]), to_ns(retries["at"]), to_ns(messages["send_at"])])
            ),
            "kind": np.concatenate(
                [
                    history["kind"].to_numpy(dtype=object),
                    np.full(n_r, "retry", dtype=object),
                    np.full(n_m, "message", dtype=object),
                ]
            ),
            "template": np.concatenate([nothing, messages["template"].to_numpy(dtype=object)]),
            "channel": np.concatenate([nothing, messages["channel"].to_numpy(dtype=object)]),
            "candidate": np.concatenate(
                [
                    np.zeros(n_h, dtype=bool),
                    np.full(n_r, "retry" in candidate_kinds),
                    np.full(n_m, "message" in candidate_kinds),
                ]
            ),
        }
    )


@dataclass
class ModelScorer:
    """The trained models plus the customer history they read features from."""

    models: TrainedModels
    log: pd.DataFrame
    table: DeclineTable
    _index: CustomerIndex | None = field(default=None, init=False, repr=False)

    @property
    def customer_index(self) -> CustomerIndex:
        """Running sums of the customer log, built once and kept."""
        if self._index is None:
            self._index = CustomerIndex.build(self.log)
        return self._index

    def event_features(
        self, events: pd.DataFrame, previous_attempts: pd.DataFrame | None
    ) -> pd.DataFrame:
        return event_features(
            events, None, self.table, previous_attempts, index=self.customer_index
        )

    def self_cure_probability(self, features: pd.DataFrame, window_days: pd.Series) -> pd.Series:
        """P(the customer pays unprompted within the window), per event_id."""
        days = int(window_days.max()) if len(window_days) else 0
        if days == 0:
            return pd.Series(0.0, index=features.index)
        rows = self_cure_features(features, days)
        hazard = self.models.self_cure.predict(rows)
        limit = rows["event_id"].map(pd.Series(window_days.to_numpy(), index=features.index))
        hazard = np.where(rows["day_index"].to_numpy() < limit.to_numpy(), hazard, 0.0)
        log_survival = pd.Series(np.log1p(-np.clip(hazard, 0, 1 - 1e-9))).groupby(
            rows["event_id"].to_numpy(), sort=False
        ).sum()
        return (1.0 - np.exp(log_survival)).reindex(features.index).fillna(0.0)

    def candidate_probabilities(self, features: pd.DataFrame, timeline: pd.DataFrame) -> pd.Series:
        """Success (retry) or response (message) probability of every candidate row."""
        if not timeline["candidate"].any():
            return pd.Series(dtype=float)
        rows = candidate_features(features, timeline)
        p = np.zeros(len(rows))
        is_retry = (rows["kind"] == "retry").to_numpy()
        if is_retry.any():
            p[is_retry] = self.models.retry.predict(rows[is_retry])
        if (~is_retry).any():
            p[~is_retry] = self.models.message.predict(rows[~is_retry])
        return pd.Series(p, index=rows.index)

    def recovery_probability(
        self,
        keys: pd.DataFrame,
        timeline: pd.DataFrame,
        p_self: pd.Series,
        p: pd.Series,
    ) -> pd.Series:
        """Expected recovery per schedule key, from candidate probabilities ``p``."""
        survival = pd.Series(np.log1p(-np.clip(p.to_numpy(), 0, 1 - 1e-9)), index=p.index)
        per_key = survival.groupby(timeline.loc[p.index, "key"].to_numpy()).sum()
        log_survival = keys["key"].map(per_key).fillna(0.0).to_numpy()
        unprompted = keys["event_id"].map(p_self).fillna(0.0).to_numpy()
        return pd.Series(
            1.0 - (1.0 - unprompted) * np.exp(log_survival), index=keys["key"].to_numpy()
        )

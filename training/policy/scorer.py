"""Score schedules with the trained models: per-event success and response
probabilities, and the expected recovery of a whole schedule.

    P(recovered) = 1 - P(no unprompted payment) * prod over events (1 - p_event)

where each retry's ``p`` comes from the retry model given everything scheduled before
it (earlier retries failed, messages sent), each message's from the message model, and
the unprompted part from the self-cure model's daily hazards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.declines.table import DeclineTable
from training.features.frames import candidate_features, event_features, self_cure_features
from training.models.train import TrainedModels

TIMELINE_COLUMNS = ("key", "event_id", "t", "kind", "template", "channel", "candidate")


def past_rows(events: pd.DataFrame, previous_attempts: pd.DataFrame | None) -> pd.DataFrame:
    """The attempts already made per event: the first is the original charge."""
    failed = pd.DataFrame(
        {"event_id": events["event_id"].to_numpy(), "t": pd.to_datetime(events["failed_at"], utc=True).to_numpy()}
    )
    parts = [failed]
    if previous_attempts is not None and len(previous_attempts):
        parts.append(
            pd.DataFrame(
                {
                    "event_id": previous_attempts["event_id"].to_numpy(),
                    "t": pd.to_datetime(previous_attempts["attempted_at"], utc=True).to_numpy(),
                }
            )
        )
    rows = pd.concat(parts, ignore_index=True)
    rows["t"] = pd.to_datetime(rows["t"], utc=True)
    rows = rows.sort_values(["event_id", "t"], kind="stable")
    first = ~rows["event_id"].duplicated()
    rows["kind"] = np.where(first, "original", "retry")
    return rows.reset_index(drop=True)


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
    """
    history = keys.merge(past, on="event_id", how="left")
    history["template"] = None
    history["channel"] = None
    history["candidate"] = False
    owner = keys.set_index("key")["event_id"]
    proposed_retries = pd.DataFrame(
        {
            "key": retries["key"].to_numpy(),
            "event_id": retries["key"].map(owner).to_numpy(),
            "t": pd.to_datetime(retries["at"], utc=True).to_numpy(),
            "kind": "retry",
            "template": None,
            "channel": None,
            "candidate": "retry" in candidate_kinds,
        }
    )
    proposed_messages = pd.DataFrame(
        {
            "key": messages["key"].to_numpy(),
            "event_id": messages["key"].map(owner).to_numpy(),
            "t": pd.to_datetime(messages["send_at"], utc=True).to_numpy(),
            "kind": "message",
            "template": messages["template"].to_numpy(),
            "channel": messages["channel"].to_numpy(),
            "candidate": "message" in candidate_kinds,
        }
    )
    parts = [p for p in (history, proposed_retries, proposed_messages) if len(p)]
    timeline = pd.concat(parts, ignore_index=True)[list(TIMELINE_COLUMNS)]
    timeline["t"] = pd.to_datetime(timeline["t"], utc=True)
    return timeline


@dataclass
class ModelScorer:
    """The trained models plus the customer history they read features from."""

    models: TrainedModels
    log: pd.DataFrame
    table: DeclineTable

    def event_features(
        self, events: pd.DataFrame, previous_attempts: pd.DataFrame | None
    ) -> pd.DataFrame:
        return event_features(events, self.log, self.table, previous_attempts)

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

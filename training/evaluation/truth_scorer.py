"""The ground truth behind the policy's search interface, so the oracle is found by the
same search as the learned policy, only with the world's true probabilities.

Per candidate row the search needs one probability. For a message that is exactly
P(respond) x P(pay); for a retry it is the true success chance given the card's update
state, mixed by how likely the card has been updated by then (unprompted, or after an
update request answered without paying). Whole schedules are then scored exactly by
:meth:`GroundTruth.recovery_probability`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.simulator import behaviour
from training.simulator.truth import GroundTruth


@dataclass
class TruthScorer:
    truth: GroundTruth

    def candidate_probabilities(self, features: pd.DataFrame, timeline: pd.DataFrame) -> pd.Series:
        """True probability of every candidate row (index: the timeline's)."""
        if not timeline["candidate"].any():
            return pd.Series(dtype=float)
        rows = timeline[timeline["kind"] != "original"]
        schedule = pd.DataFrame(
            {
                "key": rows["key"].to_numpy(),
                "invoice_id": rows["event_id"].to_numpy(),
                "t": rows["t"].to_numpy(),
                "kind": rows["kind"].to_numpy(),
                "template": rows["template"].to_numpy(),
                "channel": rows["channel"].to_numpy(),
                "row": rows.index.to_numpy(),
                "candidate": rows["candidate"].to_numpy(dtype=bool),
            }
        )
        frame = behaviour.event_frame(schedule, self.truth.invoices)
        world = self.truth.world
        retry = (frame["kind"] == "retry").to_numpy()
        p0, p1 = behaviour.retry_success(frame, world)
        respond = behaviour.message_response(frame, world)
        pay = behaviour.pay_given_response(frame, world)
        hazard = behaviour.update_hazard_per_hour(frame, world)
        spontaneous = 1.0 - np.exp(-hazard * np.maximum(frame["hours_since_failure"].to_numpy(), 0))
        # update requests answered without paying leave an updated card behind
        leaves_update = np.where(retry, 0.0, respond * (1 - pay) * behaviour.updates_card(frame))
        log_not = pd.Series(np.log1p(-np.clip(leaves_update, 0, 1 - 1e-12)))
        before = log_not.groupby(frame["key"].to_numpy()).cumsum().to_numpy() - log_not.to_numpy()
        updated = 1.0 - (1.0 - spontaneous) * np.exp(before)
        p = np.where(retry, (1 - updated) * p0 + updated * p1, respond * pay)
        candidate = frame["candidate"].to_numpy(dtype=bool)
        return pd.Series(p[candidate], index=frame["row"].to_numpy()[candidate])

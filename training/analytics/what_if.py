"""What the policy would do for one failure event, and how that changes (notebook 03).

A *what-if* starts from a recommendation request in the API contract: typed by hand, or
rebuilt from an invoice of a history (:mod:`training.analytics.what_if_requests`). The
:class:`WhatIfExplorer` decides it with the artifact's own decider, exactly as the API
would, except that exploration is off (the greedy schedule, so the page is reproducible).
On top of the decision it scores what the search looked at: the success probability of
a first retry at every hour of the window (with the chosen messages as context) and the
response probability of every template and channel for the first message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.analytics.what_if_requests import check_request
from training.api.requests import known_customers_index, requests_to_frames
from training.artifact.decision_artifact import DecisionArtifact
from training.core.localtime import defer_out_of_quiet_hours, in_quiet_hours, to_local
from training.policy.decider import ModelDecider
from training.policy.decisions import Decisions
from training.policy.retry_search import retry_windows
from training.policy.scorer import build_timeline, past_rows

EVENT_ID = "what-if"
LOCAL_FORMAT = "%a %d %b %H:%M"


@dataclass
class WhatIf:
    """One decided request: its frames, the rules' decision and the policy's."""

    request: dict[str, Any]
    events: pd.DataFrame  # one row
    previous: pd.DataFrame
    rules: pd.DataFrame  # the retry-rules decision (one row)
    decisions: Decisions

    @property
    def timezone(self) -> str:
        return str(self.events["timezone"].iloc[0])

    @property
    def failed_at(self) -> pd.Timestamp:
        return pd.Timestamp(self.events["failed_at"].iloc[0])

    def summary(self, name: str = "recommended") -> pd.DataFrame:
        """One row (index ``name``): the decline, the context, the schedule's size and
        the expected recovery of it and of the fixed schedule."""
        row = self.decisions.events.iloc[0]
        ev = self.events.iloc[0]
        channels = [c for c, on in (("email", ev["allow_email"]), ("sms", ev["allow_sms"])) if on]
        return pd.DataFrame(
            {
                "decline_code": ev["decline_code"],
                "decline_category": row["decline_category"],
                "retryable": row["retryable"],
                "rule": self.rules["rule"].iloc[0],
                "timezone": ev["timezone"],
                "failed_at_local": _local_text(self.events["failed_at"], self.timezone).iloc[0],
                "constraints": f"max {ev['max_retries']} retries, {ev['max_messages']} messages, "
                f"{ev['window_days']} days, {' + '.join(channels) or 'no channel'}",
                "sms_opt_in": bool(ev["sms_opt_in"]),
                "retries": len(self.decisions.retries),
                "messages": len(self.decisions.messages),
                "expected_recovery_rate": float(row["expected_recovery_probability"]),
                "baseline_recovery_rate": float(row["baseline_recovery_probability"]),
            },
            index=pd.Index([name], name="variant"),
        )


def _local_text(ts: pd.Series, tz: str) -> pd.Series:
    if len(ts) == 0:
        return pd.Series(dtype=object)
    return to_local(pd.Series(ts).reset_index(drop=True), tz).dt.strftime(LOCAL_FORMAT)


class WhatIfExplorer:
    """The artifact's decider (exploration off) and its known customers."""

    def __init__(self, artifact: DecisionArtifact) -> None:
        decider = artifact.decider()
        if not isinstance(decider, ModelDecider):
            raise TypeError("the what-if explorer needs a model decider")
        decider.config = decider.config.model_copy(update={"exploration_rate": 0.0})
        self.decider = decider
        self.known_customers = known_customers_index(artifact.customers)

    def decide(self, request: Mapping[str, Any]) -> WhatIf:
        """Validate and decide one request (as ``POST /v1/recommendations`` would)."""
        checked = check_request(request)
        events, previous = requests_to_frames([checked], [EVENT_ID], self.known_customers)
        rules = self.decider.rules.decide_many(events, previous).reset_index(drop=True)
        decisions = self.decider.decide(events, previous)
        return WhatIf(checked, events, previous, rules, decisions)

    def schedule(self, what_if: WhatIf) -> pd.DataFrame:
        """Retries and messages in time order, in UTC and the customer's local time, with
        the model's success (retry) or response (message) probability."""
        retries = what_if.decisions.retries.rename(
            columns={"at": "time", "success_probability": "rate"}
        ).assign(kind="retry", channel="–", template="–")
        messages = what_if.decisions.messages.rename(
            columns={"send_at": "time", "response_probability": "rate"}
        ).assign(kind="message")
        columns = ["kind", "time", "channel", "template", "rate"]
        parts = [p[columns] for p in (retries, messages) if len(p)]
        if not parts:
            return pd.DataFrame(columns=["kind", "utc", "local_time", "days_after_failure"])
        rows = pd.concat(parts, ignore_index=True).sort_values("time", kind="stable")
        rows = rows.reset_index(drop=True)
        hours = (rows["time"] - what_if.failed_at).dt.total_seconds() / 3600
        return pd.DataFrame(
            {
                "kind": rows["kind"],
                "utc": rows["time"].dt.strftime("%Y-%m-%d %H:%M"),
                "local_time": _local_text(rows["time"], what_if.timezone),
                "days_after_failure": (hours / 24).round(2),
                "channel": rows["channel"],
                "template": rows["template"],
                "success_or_response_rate": rows["rate"].astype(float),
            }
        )

    def retry_curve(self, what_if: WhatIf, step_hours: int = 1) -> pd.DataFrame:
        """Success probability of a *first* retry at every ``step_hours`` of the window.

        Each candidate is scored alone (no other new retry before it), with the schedule's
        messages as context. ``allowed``: the rules and constraints permit a retry then
        (from the earliest allowed time to the window's end, and at least one retry);
        ``quiet_hours``: local quiet hours, when no message is sent.
        """
        if step_hours < 1:
            raise ValueError("step_hours must be >= 1")
        events = what_if.events
        failed = what_if.failed_at
        window = pd.Timedelta(days=int(events["window_days"].iloc[0]))
        offsets = np.arange(step_hours, int(window / pd.Timedelta(hours=1)) + 1, step_hours)
        times = pd.Series(failed + pd.to_timedelta(offsets, unit="h"))
        keys = pd.DataFrame({"key": np.arange(len(times)), "event_id": EVENT_ID})
        messages = what_if.decisions.messages[["event_id", "send_at", "template", "channel"]]
        context = keys.merge(messages, on="event_id")[["key", "send_at", "template", "channel"]]
        past = past_rows(events, what_if.previous)
        timeline = build_timeline(
            keys, past, pd.DataFrame({"key": keys["key"], "at": times}), context, ("retry",)
        )
        scorer = self.decider.scorer
        features = scorer.event_features(events, what_if.previous)
        p = scorer.candidate_probabilities(features, timeline)
        probability = np.full(len(times), np.nan)
        probability[timeline.loc[p.index, "key"].to_numpy()] = p.to_numpy()
        limits = self.decider.rules.limits
        count, start, end = retry_windows(
            events,
            what_if.rules,
            what_if.decisions.messages,
            limits.update_requests,
            limits.min_spacing_hours,
        )
        ns = pd.DatetimeIndex(times).asi8
        config = self.decider.config
        return pd.DataFrame(
            {
                "at": times,
                "local_time": to_local(times, what_if.timezone),
                "days_after_failure": offsets / 24,
                "success_probability": probability,
                "allowed": (count[0] > 0) & (ns >= start[0]) & (ns < end[0]),
                "quiet_hours": in_quiet_hours(
                    times,
                    what_if.timezone,
                    config.quiet_hours.start_hour,
                    config.quiet_hours.end_hour,
                ).to_numpy(),
            }
        )

    def message_options(self, what_if: WhatIf) -> pd.DataFrame:
        """Response probability (``response_rate``) of every template x allowed channel as
        the first message, at the first time outside local quiet hours (the policy's first
        comparison)."""
        events = what_if.events
        ev = events.iloc[0]
        config = self.decider.config
        first = defer_out_of_quiet_hours(
            events["failed_at"],
            events["timezone"],
            config.quiet_hours.start_hour,
            config.quiet_hours.end_hour,
        ).iloc[0]
        channels = [
            c
            for c, ok in (
                ("email", ev["allow_email"]),
                ("sms", ev["allow_sms"] and ev["sms_opt_in"]),
            )
            if ok
        ]
        grid = pd.MultiIndex.from_product(
            [self.decider.templates, channels], names=["template", "channel"]
        ).to_frame(index=False)
        if grid.empty:
            return grid.assign(response_rate=pd.Series(dtype=float))
        keys = pd.DataFrame({"key": np.arange(len(grid)), "event_id": EVENT_ID})
        messages = grid.assign(key=keys["key"], send_at=first)
        no_retries = pd.DataFrame(
            {"key": pd.Series(dtype=np.int64), "at": pd.Series(dtype="datetime64[ns, UTC]")}
        )
        past = past_rows(events, what_if.previous)
        timeline = build_timeline(keys, past, no_retries, messages, ("message",))
        scorer = self.decider.scorer
        p = scorer.candidate_probabilities(
            scorer.event_features(events, what_if.previous), timeline
        )
        grid["response_rate"] = np.nan
        grid.loc[timeline.loc[p.index, "key"].to_numpy(), "response_rate"] = p.to_numpy()
        chosen = what_if.decisions.messages.head(1)
        grid["chosen_first"] = grid["template"].isin(chosen["template"]) & grid["channel"].isin(
            chosen["channel"]
        )
        grid.insert(2, "local_time", _local_text(pd.Series([first] * len(grid)), what_if.timezone))
        return grid.sort_values("response_rate", ascending=False, kind="stable").reset_index(
            drop=True
        )

    def compare(
        self, variants: Mapping[str, Mapping[str, Any]]
    ) -> tuple[pd.DataFrame, dict[str, WhatIf]]:
        """Decide every variant request; one summary row per variant (with its schedule
        in words) and the decided variants by name."""
        decided = {name: self.decide(request) for name, request in variants.items()}
        rows = []
        for name, what_if in decided.items():
            schedule = self.schedule(what_if)
            retries = schedule[schedule["kind"] == "retry"]
            messages = schedule[schedule["kind"] == "message"]
            rows.append(
                what_if.summary(name).assign(
                    retry_times=" · ".join(retries["local_time"]) or "none",
                    message_plan=" · ".join(
                        messages["template"]
                        + " by "
                        + messages["channel"]
                        + " "
                        + messages["local_time"]
                    )
                    or "none",
                )
            )
        return pd.concat(rows), decided

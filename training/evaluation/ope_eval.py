"""Off-policy estimates from a history's logged propensities.

Logged propensities only speak for the plans the logging policy explored, so the policy
whose value they estimate is the learned model *choosing among the explored plans*
(:func:`menu_choices`): for every held-out invoice the models score each (retry plan,
message plan) pair of the menu and the best one is the target's action. IPS, SNIPS and
DR then estimate its recovery rate from the logged outcomes; on a simulated history its
exact value is computed too, so the estimators are checked against the truth. The
learned policy's own schedules (free hourly times) were never explored by the logs; its
value on a real history is the model's direct estimate, reported beside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.contract.history import History
from training.evaluation.logged_plans import (
    LoggedSchedules,
    Menu,
    consistent_message_plans,
    consistent_retry_plans,
    learn_menu,
    plan_index,
    read_logged,
)
from training.evaluation.ope import LoggedFeedback, default_estimators, summarize
from training.evaluation.ope_support import OverlapDiagnostics, SupportThresholds
from training.policy.decider import ModelDecider
from training.policy.scorer import build_timeline, past_rows

HOUR = np.timedelta64(3600, "s")


@dataclass
class MenuChoice:
    """The target policy's plan per event and the schedules that plan means."""

    retry_plan: np.ndarray
    message_plan: np.ndarray
    estimate: np.ndarray  # the model's expected recovery of the chosen pair
    retries: pd.DataFrame  # event_id, at
    messages: pd.DataFrame  # event_id, send_at, template, channel


def sms_positions(history: History, logged: LoggedSchedules, menu: Menu) -> np.ndarray:
    """(message plans x positions) bool: the logging system used SMS there for customers
    who opted in (without opt-in it can only have used email)."""
    msgs = history.messages.sort_values(["invoice_id", "sent_at"], kind="stable")
    opt_in = msgs["invoice_id"].map(
        history.invoices.set_index("invoice_id")["customer_id"].map(
            history.customers.set_index("customer_id")["sms_opt_in"]
        )
    )
    msgs = msgs.assign(pos=msgs.groupby("invoice_id").cumcount(), opt_in=opt_in.to_numpy())
    plans = pd.Series(
        plan_index(logged.message_templates, menu.message_templates), index=logged.invoice_id
    )
    msgs["plan_i"] = msgs["invoice_id"].map(plans)
    opted = msgs[
        msgs["opt_in"].fillna(False).astype(bool).to_numpy() & (msgs["plan_i"] >= 0).to_numpy()
    ]
    share = opted.assign(sms=opted["channel"] == "sms").groupby(["plan_i", "pos"])["sms"].mean()
    # annotated: numpy's stubs type zeros() of an unknown-length shape as 0-D
    out: np.ndarray = np.zeros(menu.message_templates.shape, dtype=bool)
    for (plan_i, pos), value in share.items():  # a handful of (plan, position) cells
        if pos < out.shape[1]:
            out[int(plan_i), int(pos)] = value > 0.5
    return out


def instantiate(
    events: pd.DataFrame, menu: Menu, sms: np.ndarray, pairs: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Schedules of (key, event position, retry plan, message plan) rows at nominal times."""
    due = (
        pd.DatetimeIndex(pd.to_datetime(events["failed_at"], utc=True)).tz_convert(None).to_numpy()
    )
    opt_in = events["sms_opt_in"].to_numpy(dtype=bool) & events["allow_sms"].to_numpy(dtype=bool)
    e, r, m, key = (pairs[c].to_numpy() for c in ("event", "retry_plan", "message_plan", "key"))
    retry_parts, message_parts = [], []
    for pos in range(menu.retry_offsets.shape[1]):
        off = menu.retry_offsets[r, pos]
        ok = ~np.isnan(off)
        retry_parts.append(
            pd.DataFrame(
                {
                    "key": key[ok],
                    "at": due[e[ok]] + (off[ok] * 3600).astype(np.int64) * np.timedelta64(1, "s"),
                }
            )
        )
    for pos in range(menu.message_offsets.shape[1]):
        off = menu.message_offsets[m, pos]
        ok = ~np.isnan(off)
        message_parts.append(
            pd.DataFrame(
                {
                    "key": key[ok],
                    "send_at": due[e[ok]]
                    + (off[ok] * 3600).astype(np.int64) * np.timedelta64(1, "s"),
                    "template": menu.message_templates[m[ok], pos],
                    "channel": np.where(sms[m[ok], pos] & opt_in[e[ok]], "sms", "email"),
                }
            )
        )
    retries = pd.concat(retry_parts, ignore_index=True)
    messages = pd.concat(message_parts, ignore_index=True)
    retries["at"] = pd.to_datetime(retries["at"], utc=True)
    messages["send_at"] = pd.to_datetime(messages["send_at"], utc=True)
    return retries, messages


def _score_pairs(
    decider: ModelDecider,
    events: pd.DataFrame,
    menu: Menu,
    sms: np.ndarray,
    pairs: pd.DataFrame,
    features: pd.DataFrame,
    p_self: pd.Series,
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Model estimate of each (event, retry plan, message plan) row of ``pairs``."""
    pairs = pairs.assign(key=np.arange(len(pairs)))
    retries, messages = instantiate(events, menu, sms, pairs)
    keys = pd.DataFrame(
        {"key": pairs["key"], "event_id": events["event_id"].to_numpy()[pairs["event"]]}
    )
    timeline = build_timeline(keys, past_rows(events, None), retries, messages)
    p = decider.scorer.candidate_probabilities(features, timeline)
    value = decider.scorer.recovery_probability(keys, timeline, p_self, p).to_numpy()
    return value, retries, messages


def menu_choices(
    decider: ModelDecider, events: pd.DataFrame, menu: Menu, sms: np.ndarray
) -> MenuChoice:
    """The model's best (retry plan, message plan) pair per event, by coordinate ascent:
    the best message plan alongside the most logged retry plan, then the best retry plan
    alongside that message plan (|R| + |M| schedules per event instead of |R| x |M|)."""
    events = events.reset_index(drop=True)
    n, n_r, n_m = len(events), len(menu.retry_offsets), len(menu.message_offsets)
    features = decider.scorer.event_features(events, None)
    p_self = decider.scorer.self_cure_probability(
        features, events.set_index("event_id")["window_days"]
    )
    usual_r = int(np.argmax(menu.retry_probability))
    first = pd.DataFrame(
        {
            "event": np.repeat(np.arange(n), n_m),
            "retry_plan": usual_r,
            "message_plan": np.tile(np.arange(n_m), n),
        }
    )
    value, _, _ = _score_pairs(decider, events, menu, sms, first, features, p_self)
    best_m = value.reshape(n, n_m).argmax(axis=1)
    second = pd.DataFrame(
        {
            "event": np.repeat(np.arange(n), n_r),
            "retry_plan": np.tile(np.arange(n_r), n),
            "message_plan": np.repeat(best_m, n_r),
        }
    )
    value, retries, messages = _score_pairs(decider, events, menu, sms, second, features, p_self)
    best_r = value.reshape(n, n_r).argmax(axis=1)
    chosen_keys = np.arange(n) * n_r + best_r
    owner = pd.Series(
        events["event_id"].to_numpy()[second["event"].to_numpy()], index=np.arange(len(second))
    )
    chosen_r = retries[retries["key"].isin(chosen_keys)]
    chosen_m = messages[messages["key"].isin(chosen_keys)]
    return MenuChoice(
        retry_plan=best_r,
        message_plan=best_m,
        estimate=value.reshape(n, n_r)[np.arange(n), best_r],
        retries=chosen_r.assign(event_id=chosen_r["key"].map(owner))[["event_id", "at"]],
        messages=chosen_m.assign(event_id=chosen_m["key"].map(owner))[
            ["event_id", "send_at", "template", "channel"]
        ],
    )


@dataclass
class OffPolicyResult:
    estimates: dict[str, dict[str, float | int | str]]
    choice: MenuChoice
    menu: Menu
    feedback: LoggedFeedback
    usable: np.ndarray  # events with at least one consistent menu plan


def per_decision_share(history: History) -> float:
    """Share of invoices with two or more logged retries whose retries carry different
    propensities: a team that drew whole plans logs one probability per plan, so any
    noticeable share means the propensities are per decision and the menu assumption
    does not hold."""
    att = history.attempts
    retries = att[(att["initiated_by"] == "merchant") & att["propensity"].notna()]
    counts = retries.groupby("invoice_id")["propensity"].agg(["size", "nunique"])
    several = counts[counts["size"] >= 2]
    return float((several["nunique"] > 1).mean()) if len(several) else 0.0


def refuse_thin_overlap(
    estimates: dict[str, dict[str, float | int]],
    feedback: LoggedFeedback,
    thresholds: SupportThresholds | None = None,
) -> dict[str, dict[str, float | int | str]]:
    """The weighted estimates with their interval, or, when the overlap is too thin
    (``ope_support``), the reason in place of a number; DM is the model's own estimate."""
    reasons = OverlapDiagnostics.of(feedback).shortfalls(thresholds or SupportThresholds())
    out: dict[str, dict[str, float | int | str]] = {}
    for name, entry in estimates.items():
        if reasons and name != "dm":
            out[name] = {
                "cannot_estimate": "; ".join(reasons),
                "matched": entry["matched"],
                "ess": entry["ess"],
            }
        else:
            out[name] = dict(entry)
    return out


MAX_PER_DECISION_SHARE = 0.01


def off_policy_estimates(
    decider: ModelDecider,
    history: History,
    test_events: pd.DataFrame,
    window_days: int,
    n_bootstrap: int = 1000,
    seed: int = 7,
    min_support: int = 20,
) -> OffPolicyResult | str:
    """IPS, SNIPS, DR (and DM) of the menu-restricted learned policy, each refused when
    the overlap is too thin; the reason instead when the history cannot support the
    menu estimate at all (per-decision propensities, or no explored plan seen often
    enough)."""
    share = per_decision_share(history)
    if share > MAX_PER_DECISION_SHARE:
        return (
            f"the retries of one invoice carry different propensities ({share:.0%} of "
            "invoices with several retries): the team logged per-decision probabilities, "
            "not plans drawn from a menu; see the first-retry timing estimate"
        )
    if history.messages.empty:
        return "the history logs no messages: the menu estimate needs the team's message plans"
    logged_all = read_logged(history, window_days)
    menu = learn_menu(logged_all, min_support)
    if len(menu.retry_offsets) == 0 or len(menu.message_offsets) == 0:
        return "no explored plan was logged often enough with propensities"
    position = pd.Series(np.arange(len(logged_all.invoice_id)), index=logged_all.invoice_id)
    rows = position.loc[test_events["invoice_id"].to_numpy()].to_numpy()
    logged = LoggedSchedules(
        **{
            name: getattr(logged_all, name)[rows]
            for name in (
                "invoice_id",
                "retry_offsets",
                "message_offsets",
                "message_templates",
                "end_hours",
                "recovered",
                "retry_propensity",
                "message_propensity",
            )
        }
    )
    sms = sms_positions(history, logged_all, menu)
    choice = menu_choices(decider, test_events, menu, sms)
    c_r = consistent_retry_plans(logged, menu)
    c_m = consistent_message_plans(logged, menu)
    idx = np.arange(len(rows))
    match = c_r[idx, choice.retry_plan] & c_m[idx, choice.message_plan]
    mu = (c_r @ menu.retry_probability) * (c_m @ menu.message_probability)
    usable = mu > 0
    feedback = LoggedFeedback(
        reward=logged.recovered[usable].astype(float),
        match=match[usable].astype(float),
        logging_probability=np.minimum(mu[usable], 1.0),
        target_value=choice.estimate[usable],
        logged_value=choice.estimate[usable],
    )
    estimates = refuse_thin_overlap(
        summarize(default_estimators(), feedback, n_bootstrap=n_bootstrap, random_state=seed),
        feedback,
    )
    for value in estimates.values():
        value["units"] = int(usable.sum())
    return OffPolicyResult(estimates, choice, menu, feedback, usable)

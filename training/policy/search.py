"""Search a schedule per failure event, vectorized over many events.

Scoring every hour x template x channel with the models would cost thousands of model
rows per request, so the search is staged (sizes per event, 14-day window):

1. messages, greedily one at a time: the templates x channels at the first allowed time
   (<= 10 rows), then the best pair at the allowed local hours of the next days
   (<= 21 rows); a message is kept if its response probability is worth it;
2. retries, jointly: the retry model scores a coarse grid of times (every 3 h) as the
   1st, 2nd, ... retry (earlier retries sit as failed attempts at a nominal gap), and a
   dynamic programme picks the times that minimise the chance that every retry fails,
   under the rules' earliest time and minimum spacing (<= 4 x 112 rows);
3. each chosen retry is refined hour by hour around its grid point (<= 16 rows).

Everything is clipped by the retry-rules engine's decision for the event.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.features.dunning_state import grid_state
from training.features.frames import assemble_rows
from training.policy.config import PolicyConfig
from training.policy.scorer import ModelScorer, build_timeline
from training.policy.timing import (
    at_local_time,
    defer_out_of_quiet_hours,
    from_ns,
    to_local,
    to_ns,
)

HOUR_NS = 3_600_000_000_000
UPDATE_TEMPLATE = "update_payment_method"


def _ns(ts) -> np.ndarray:
    return to_ns(ts).copy()


def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(from_ns(ns))


def _in_quiet(local_hour: np.ndarray, config: PolicyConfig) -> np.ndarray:
    start, end = config.quiet_start_hour, config.quiet_end_hour
    if start == end:
        return np.zeros(len(local_hour), dtype=bool)
    if start > end:
        return (local_hour >= start) | (local_hour < end)
    return (local_hour >= start) & (local_hour < end)


def _channels(events: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    email = events["allow_email"].to_numpy(dtype=bool)
    sms = events["allow_sms"].to_numpy(dtype=bool) & events["sms_opt_in"].to_numpy(dtype=bool)
    return [("email", email), ("sms", sms)]


def _score_messages(
    scorer: ModelScorer,
    features: pd.DataFrame,
    past: pd.DataFrame,
    chosen: pd.DataFrame,
    candidates: pd.DataFrame,
) -> np.ndarray:
    """Response probability of each candidate (event_id, send_at, template, channel),
    after the messages already ``chosen`` for its event."""
    keys = pd.DataFrame({"key": np.arange(len(candidates)), "event_id": candidates["event_id"].to_numpy()})
    context = keys.merge(chosen, on="event_id")
    messages = pd.concat(
        [
            candidates.assign(key=keys["key"].to_numpy(), candidate=True),
            context.assign(candidate=False),
        ],
        ignore_index=True,
    )
    timeline = build_timeline(keys, past, _no_retries(), messages.drop(columns="candidate"))
    proposed = timeline["kind"] == "message"
    flags = messages["candidate"].to_numpy()
    timeline.loc[proposed, "candidate"] = flags
    p = scorer.candidate_probabilities(features, timeline)
    order = timeline.loc[p.index, "key"].to_numpy()
    out = np.zeros(len(candidates))
    out[order] = p.to_numpy()
    return out


def _no_retries() -> pd.DataFrame:
    return pd.DataFrame({"key": pd.Series(dtype=np.int64), "at": pd.Series(dtype="datetime64[ns, UTC]")})


def plan_messages(
    scorer: ModelScorer,
    events: pd.DataFrame,
    features: pd.DataFrame,
    past: pd.DataFrame,
    decisions: pd.DataFrame,
    templates: list[str],
    config: PolicyConfig,
) -> pd.DataFrame:
    """Greedy message plan: event_id, send_at, template, channel, response_probability."""
    chosen = pd.DataFrame(columns=["event_id", "send_at", "template", "channel", "response_probability"])
    chosen["send_at"] = pd.Series(dtype="datetime64[ns, UTC]")
    if not templates:
        return chosen
    ids = events["event_id"].to_numpy()
    tz = events["timezone"].fillna("UTC").to_numpy()
    failed = _ns(events["failed_at"])
    window_end = failed + events["window_days"].to_numpy(dtype=np.int64) * 24 * HOUR_NS
    earliest = failed.copy()
    budget = events["max_messages"].to_numpy(dtype=np.int64)
    force_update = decisions["needs_update_first"].to_numpy(dtype=bool) & (UPDATE_TEMPLATE in templates)
    channels = _channels(events)
    gap = int(config.min_message_gap_hours * HOUR_NS)
    for round_ in range(int(budget.max()) if len(budget) else 0):
        ref = _ns(defer_out_of_quiet_hours(_utc(earliest), pd.Series(tz), config.quiet_start_hour, config.quiet_end_hour))
        active = (budget > round_) & (ref < window_end)
        if not active.any():
            break
        # (a) which template and channel, at the first allowed time
        combos = []
        for template in templates:
            for channel, allowed in channels:
                ok = active & allowed
                if round_ == 0:
                    ok &= ~force_update | (template == UPDATE_TEMPLATE)
                idx = np.flatnonzero(ok)
                combos.append(
                    pd.DataFrame(
                        {"pos": idx, "event_id": ids[idx], "send_at": _utc(ref[idx]).array, "template": template, "channel": channel}
                    )
                )
        combos = pd.concat(combos, ignore_index=True)
        if combos.empty:
            break
        combos["send_at"] = pd.to_datetime(combos["send_at"], utc=True)
        combos["p"] = _score_messages(scorer, features, past, chosen[["event_id", "send_at", "template", "channel"]], combos.drop(columns="pos"))
        best = combos.sort_values(["pos", "p"], ascending=[True, False], kind="stable").drop_duplicates("pos")
        # (b) when: the allowed local hours of the next days
        slots = _message_slots(best, ref, window_end, tz, config)
        if slots.empty:
            break
        slots["p"] = _score_messages(scorer, features, past, chosen[["event_id", "send_at", "template", "channel"]], slots.drop(columns="pos"))
        pick = slots.sort_values(["pos", "p"], ascending=[True, False], kind="stable").drop_duplicates("pos")
        pick = pick[pick["p"] >= config.min_message_gain]
        if pick.empty:
            break
        picked = pick.rename(columns={"p": "response_probability"}).drop(columns="pos")
        chosen = picked if chosen.empty else pd.concat([chosen, picked], ignore_index=True)
        pos = pick["pos"].to_numpy()
        earliest[pos] = _ns(pick["send_at"]) + gap
        stopped = np.setdiff1d(np.flatnonzero(active), pos)
        earliest[stopped] = window_end[stopped]
    chosen["send_at"] = pd.to_datetime(chosen["send_at"], utc=True)
    return chosen.sort_values(["event_id", "send_at"], kind="stable").reset_index(drop=True)


def _message_slots(
    best: pd.DataFrame, ref: np.ndarray, window_end: np.ndarray, tz: np.ndarray, config: PolicyConfig
) -> pd.DataFrame:
    pos = best["pos"].to_numpy()
    hours = np.array(config.message_local_hours, dtype=np.int64)
    days = np.arange(config.message_days_ahead)
    local_day = to_local(_utc(ref[pos]), pd.Series(tz[pos])).dt.normalize()
    grid_pos = np.repeat(np.arange(len(pos)), len(days) * len(hours))
    day_off = np.tile(np.repeat(days, len(hours)), len(pos))
    hour = np.tile(hours, len(pos) * len(days))
    target_day = local_day.to_numpy()[grid_pos] + day_off.astype("timedelta64[D]")
    at = _ns(at_local_time(pd.Series(target_day), pd.Series(tz[pos][grid_pos]), pd.Series(hour)))
    slot_pos = pos[grid_pos]
    keep = (at >= ref[slot_pos]) & (at < window_end[slot_pos]) & ~_in_quiet(hour.astype(float), config)
    slots = best.iloc[grid_pos[keep]][["pos", "event_id", "template", "channel"]].reset_index(drop=True)
    slots.insert(2, "send_at", _utc(at[keep]))
    # the first allowed time itself is always a candidate
    first = best[["pos", "event_id", "send_at", "template", "channel"]]
    return pd.concat([first, slots], ignore_index=True).drop_duplicates(["pos", "send_at"])


def retry_windows(
    events: pd.DataFrame,
    decisions: pd.DataFrame,
    messages: pd.DataFrame,
    update_plausible_after_hours: float,
    min_spacing_hours: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per event: how many retries, and the earliest and latest (exclusive) time, ns."""
    failed = _ns(events["failed_at"])
    window_end = failed + events["window_days"].to_numpy(dtype=np.int64) * 24 * HOUR_NS
    count = np.minimum(
        events["max_retries"].to_numpy(dtype=np.int64),
        decisions["max_additional_retries"].to_numpy(dtype=np.int64),
    )
    not_before = decisions["not_before"]
    start = np.where(not_before.isna(), failed + int(min_spacing_hours * HOUR_NS), _ns(not_before.fillna(events["failed_at"])))
    needs_update = decisions["needs_update_first"].to_numpy(dtype=bool)
    asks = messages[messages["template"] == UPDATE_TEMPLATE].groupby("event_id")["send_at"].min()
    first_ask = events["event_id"].map(asks)
    plausible = np.where(first_ask.isna(), np.iinfo(np.int64).max // 2, _ns(first_ask.fillna(events["failed_at"])) + int(update_plausible_after_hours * HOUR_NS))
    start = np.where(needs_update, np.maximum(start, plausible), start)
    allowed = decisions["allowed"].to_numpy(dtype=bool) | (needs_update & first_ask.notna().to_numpy())
    count = np.where(allowed & (start < window_end), count, 0)
    return count, start, window_end


def plan_retries(
    scorer: ModelScorer,
    events: pd.DataFrame,
    features: pd.DataFrame,
    past: pd.DataFrame,
    messages: pd.DataFrame,
    count: np.ndarray,
    start: np.ndarray,
    window_end: np.ndarray,
    min_spacing_hours: float,
    config: PolicyConfig,
) -> pd.DataFrame:
    """Retry times per event (event_id, at) by dynamic programming on a coarse grid."""
    ids = events["event_id"].to_numpy()
    step = config.retry_grid_hours * HOUR_NS
    slots = np.where(count > 0, np.ceil((window_end - start) / step).astype(np.int64), 0)
    if slots.sum() == 0:
        return pd.DataFrame({"event_id": pd.Series(dtype=object), "at": pd.Series(dtype="datetime64[ns, UTC]")})
    k_max, j_max = int(count.max()), int(slots.max())
    # candidate rows: (event, k, j) for k < count, j < slots
    rows_per_event = count * slots
    pos = np.repeat(np.arange(len(ids)), rows_per_event)
    r = _counter(rows_per_event)
    k, j = r // slots[pos], r % slots[pos]
    at = start[pos] + j * step
    p = _retry_probabilities(scorer, features, past, messages, ids[pos], at, k, config)
    log_fail = np.full((len(ids), k_max, j_max), np.inf)
    log_fail[pos, k, j] = np.log1p(-np.clip(p, 0, 1 - 1e-9))
    e_idx, j_idx = _dp(log_fail, count, int(np.ceil(min_spacing_hours * HOUR_NS / step)))
    plan = pd.DataFrame({"event_id": ids[e_idx], "at": _utc(start[e_idx] + j_idx * step)})
    if plan.empty:
        return plan
    return _refine(scorer, features, past, messages, plan, start, window_end, ids, min_spacing_hours, config)


def _retry_probabilities(
    scorer: ModelScorer,
    features: pd.DataFrame,
    past: pd.DataFrame,
    messages: pd.DataFrame,
    event_ids: np.ndarray,
    at: np.ndarray,
    k: np.ndarray,
    config: PolicyConfig,
) -> np.ndarray:
    """Success probability of a retry at ``at`` (ns) as the k-th new one (k earlier new
    retries failed, the last at the nominal gap before it).

    With the models, the candidates' features come straight from :func:`grid_state`;
    any other scorer (the ground truth, for the oracle) gets the candidates as timelines.
    """
    if not isinstance(scorer, ModelScorer):
        return _timeline_retry_probabilities(scorer, features, past, messages, event_ids, at, k, config)
    frame = retry_grid_rows(features, past, messages, event_ids, at, k, config)
    return scorer.models.retry.predict(frame)


def retry_grid_rows(
    features: pd.DataFrame,
    past: pd.DataFrame,
    messages: pd.DataFrame,
    event_ids: np.ndarray,
    at: np.ndarray,
    k: np.ndarray,
    config: PolicyConfig,
) -> pd.DataFrame:
    """Model input rows of candidate retries (see :func:`_retry_probabilities`)."""
    position = pd.Index(pd.unique(event_ids))
    event = position.get_indexer(event_ids)
    owner = position.get_indexer(past["event_id"])
    keep = owner >= 0
    past_h = to_ns(past["t"])[keep] / HOUR_NS
    owner = owner[keep]
    is_original = (past["kind"].to_numpy() == "original")[keep]
    start = np.full(len(position), np.nan)
    np.fmin.at(start, owner[is_original], past_h[is_original])
    last_attempt = np.full(len(position), -np.inf)
    np.maximum.at(last_attempt, owner, past_h)
    past_retries = np.bincount(owner[~is_original], minlength=len(position)).astype(float)
    msg_owner = position.get_indexer(messages["event_id"])
    msgs = pd.DataFrame(
        {"e": msg_owner, "h": to_ns(messages["send_at"]) / HOUR_NS,
         "update": (messages["template"] == UPDATE_TEMPLATE).to_numpy()}
    )
    msgs = msgs[msgs["e"] >= 0].sort_values(["e", "h"], kind="stable")
    hours = at / HOUR_NS
    state = grid_state(
        event, hours, k, start, last_attempt, past_retries,
        msgs["e"].to_numpy(), msgs["h"].to_numpy(), msgs["update"].to_numpy(dtype=bool),
        config.nominal_retry_gap_hours,
    )
    rows = pd.DataFrame(
        {"event_id": event_ids, "t": from_ns(at), "kind": "retry", "template": None, "channel": None}
    )
    return assemble_rows(features, rows, state)


def _timeline_retry_probabilities(
    scorer, features, past, messages, event_ids, at, k, config
) -> np.ndarray:
    """The same as :func:`_retry_probabilities`, through full timelines: each candidate
    with its k earlier failed retries as rows at the nominal gap and its event's messages."""
    n = len(at)
    keys = pd.DataFrame({"key": np.arange(n), "event_id": event_ids})
    gap = int(config.nominal_retry_gap_hours * HOUR_NS)
    phantom_key = np.repeat(np.arange(n), k)
    phantom_i = _counter(k) + 1
    retries = pd.concat(
        [
            pd.DataFrame({"key": np.arange(n), "at": _utc(at), "candidate": True}),
            pd.DataFrame({"key": phantom_key, "at": _utc(at[phantom_key] - phantom_i * gap), "candidate": False}),
        ],
        ignore_index=True,
    )
    msg_context = keys.merge(messages[["event_id", "send_at", "template", "channel"]], on="event_id")
    timeline = build_timeline(keys, past, retries.drop(columns="candidate"), msg_context, ("retry",))
    proposed = (timeline["kind"] == "retry") & timeline["candidate"]
    timeline.loc[proposed, "candidate"] = retries["candidate"].to_numpy()
    p = scorer.candidate_probabilities(features, timeline)
    out = np.zeros(n)
    out[timeline.loc[p.index, "key"].to_numpy()] = p.to_numpy()
    return out


def _dp(log_fail: np.ndarray, count: np.ndarray, spacing: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid indexes of the retries minimising total log-survival, spaced >= ``spacing``.

    Returns (event index, grid index) pairs, events in order, times increasing. Every
    extra retry can only lower the chance that all fail, so the most retries that fit
    are used; events where none fits get none.
    """
    n, k_max, j_max = log_fail.shape
    value = np.full((n, k_max, j_max), np.inf)
    back = np.zeros((n, k_max, j_max), dtype=np.int64)
    value[:, 0, :] = log_fail[:, 0, :]
    for k in range(1, k_max):
        prev = value[:, k - 1, :]
        best_prev = np.minimum.accumulate(prev, axis=1)
        arg_prev = _running_argmin(prev)
        shifted = np.full((n, j_max), np.inf)
        shifted_arg = np.zeros((n, j_max), dtype=np.int64)
        if spacing < j_max:
            shifted[:, spacing:] = best_prev[:, : j_max - spacing]
            shifted_arg[:, spacing:] = arg_prev[:, : j_max - spacing]
        value[:, k, :] = log_fail[:, k, :] + shifted
        back[:, k, :] = shifted_arg
    best_per_k = value.min(axis=2)  # (n, k_max)
    feasible = np.isfinite(best_per_k) & (np.arange(k_max)[None, :] < count[:, None])
    has_any = feasible.any(axis=1)
    k_star = np.where(has_any, k_max - 1 - np.argmax(feasible[:, ::-1], axis=1), -1)
    events = np.flatnonzero(has_any)
    path = np.full((n, k_max), -1, dtype=np.int64)
    ks = k_star[events]
    path[events, ks] = np.argmin(value[events, ks, :], axis=1)
    for k in range(k_max - 1, 0, -1):
        on = events[ks >= k]
        path[on, k - 1] = back[on, k, path[on, k]]
    e_idx, k_idx = np.nonzero(path >= 0)
    return e_idx, path[e_idx, k_idx]


def _counter(sizes: np.ndarray) -> np.ndarray:
    """0..size-1 for each group of ``sizes``, concatenated."""
    total = int(sizes.sum())
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.arange(total) - starts


def _running_argmin(values: np.ndarray) -> np.ndarray:
    """Index of the running minimum along axis 1."""
    n, m = values.shape
    idx = np.zeros((n, m), dtype=np.int64)
    best = values[:, 0].copy()
    for j in range(1, m):
        better = values[:, j] < best
        best = np.where(better, values[:, j], best)
        idx[:, j] = np.where(better, j, idx[:, j - 1])
    return idx


def _refine(
    scorer: ModelScorer,
    features: pd.DataFrame,
    past: pd.DataFrame,
    messages: pd.DataFrame,
    plan: pd.DataFrame,
    start: np.ndarray,
    window_end: np.ndarray,
    ids: np.ndarray,
    min_spacing_hours: float,
    config: PolicyConfig,
) -> pd.DataFrame:
    """Move each retry by up to ``refine_hours`` when the whole schedule gains."""
    if config.refine_hours == 0 or plan.empty:
        return plan
    plan = plan.sort_values(["event_id", "at"], kind="stable").reset_index(drop=True)
    position = pd.Series(np.arange(len(ids)), index=ids)
    shifts = [h for h in range(-config.refine_hours, config.refine_hours + 1)]
    base_ns = _ns(plan["at"])
    # one variant schedule per (retry, shift): the retry moved, the others kept
    variant_rows = []
    for shift in shifts:
        moved = base_ns + shift * HOUR_NS
        variant_rows.append(pd.DataFrame({"variant_of": np.arange(len(plan)), "shift": shift, "moved": moved}))
    variants = pd.concat(variant_rows, ignore_index=True)
    ev = position.loc[plan["event_id"].to_numpy()].to_numpy()[variants["variant_of"].to_numpy()]
    ok = (variants["moved"].to_numpy() >= start[ev]) & (variants["moved"].to_numpy() < window_end[ev])
    variants = variants[ok].reset_index(drop=True)
    keys = pd.DataFrame({"key": np.arange(len(variants)), "event_id": plan["event_id"].to_numpy()[variants["variant_of"].to_numpy()]})
    # each variant's schedule: the event's plan with one retry moved
    members = keys.merge(plan.reset_index(names="row"), on="event_id")
    moved_row = variants["variant_of"].to_numpy()[members["key"].to_numpy()]
    members["at"] = np.where(members["row"].to_numpy() == moved_row, variants["moved"].to_numpy()[members["key"].to_numpy()], _ns(members["at"]))
    members["at"] = from_ns(members["at"].to_numpy(dtype=np.int64))
    spacing_ok = _spacing_ok(members, past, min_spacing_hours)
    msg_context = keys.merge(messages[["event_id", "send_at", "template", "channel"]], on="event_id")
    timeline = build_timeline(keys, past, members[["key", "at"]], msg_context, ("retry",))
    p = scorer.candidate_probabilities(features, timeline)
    survival = pd.Series(np.log1p(-np.clip(p.to_numpy(), 0, 1 - 1e-9))).groupby(timeline.loc[p.index, "key"].to_numpy()).sum()
    variants["log_survival"] = survival.reindex(np.arange(len(variants))).fillna(0.0).to_numpy()
    variants.loc[~spacing_ok.reindex(np.arange(len(variants))).fillna(False).to_numpy(), "log_survival"] = np.inf
    best = variants.sort_values(["variant_of", "log_survival"], kind="stable").drop_duplicates("variant_of")
    # apply the best single move per event (moves of several retries could conflict)
    best["event"] = plan["event_id"].to_numpy()[best["variant_of"].to_numpy()]
    best = best.sort_values(["event", "log_survival"], kind="stable").drop_duplicates("event")
    out_ns = base_ns.copy()
    out_ns[best["variant_of"].to_numpy()] = best["moved"].to_numpy()
    plan["at"] = from_ns(out_ns)
    return plan.sort_values(["event_id", "at"], kind="stable").reset_index(drop=True)


def _spacing_ok(members: pd.DataFrame, past: pd.DataFrame, min_spacing_hours: float) -> pd.Series:
    """Per variant key: every attempt (past and proposed) at least the minimum apart."""
    past_rows = members[["key", "event_id"]].drop_duplicates().merge(past[["event_id", "t"]], on="event_id")
    times = pd.concat(
        [members[["key"]].assign(t=_ns(members["at"])), past_rows[["key"]].assign(t=_ns(past_rows["t"]))],
        ignore_index=True,
    ).sort_values(["key", "t"], kind="stable")
    gaps = times.groupby("key")["t"].diff()
    too_close = (gaps < min_spacing_hours * HOUR_NS).groupby(times["key"]).any()
    return ~too_close

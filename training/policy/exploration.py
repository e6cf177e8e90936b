"""The learned policy's exploration: which schedule a decision returns instead of the
searched one, and the exact probability of the schedule returned.

Three kinds of arm, drawn from one uniform number ``u`` per decision:

* ``u < exploration_rate``: one of ``arms = 1 + len(exploration_shifts_hours)`` cells,
  the first the searched schedule, each other every retry shifted by its hours (kept
  only when the whole shifted schedule stays inside the event's window);
* ``exploration_rate <= u < exploration_rate + day_mass``: the *first retry's day*: the
  first retry moved by a whole number of days (its clock time kept) to one of the other
  days the window and the rules allow, each with ``day_mass / days``; the later retries
  kept where they are when they stay ``min_spacing`` after the one before, else pushed
  later by the spacing, and dropped when pushed past the window;
* otherwise the searched schedule.

The propensity is the probability of the schedule returned, summed over every cell that
returns it: an arm that cannot move (a shift outside the window, no other day allowed,
no retry at all) returns the searched schedule, so its mass is the searched schedule's.

Each returned retry also gets its own probability (``Explored.retry_propensity``, what
``export-outcomes`` writes on its attempt): the mass of every cell whose schedule has the
retry *of the same rank* at the same time. The first retry's equals the schedule's (no
other arm puts a first retry there); a later one left in place by a first-retry-day move
also gets the searched schedule's mass and that of every other day that leaves it there.
By rank, not by time alone: a first retry moved onto the searched second retry's time is
still a rare first retry (the first-retry estimators read it so). No arm moves a message:
each returned message's own probability is 1 (:func:`message_propensities`).

Why the explored schedules break no rule the searched one keeps: they stay inside the
same window (the rules' earliest time, the dunning window and the rules'
``retry_deadline``: :func:`training.policy.retry_search.retry_windows`), keep the spacing and never add a
retry; the card caps count the attempts up to the failure (``rules.py``), so any times
after it keep them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from training.config.policy import PolicyConfig
from training.core.arrays import cummax_in_group, group_first, rank_in_group
from training.core.localtime import DAY_NS, HOUR_NS
from training.policy.schedule_rows import RetryRows

SEARCHED, SHIFTED, DAY_MOVED = 0, 1, 2
"""What each decision returned (``Explored.kind``)."""


class Explored(NamedTuple):
    """The retries returned and, per event (events' order), the propensity of the
    schedule returned, which kind of arm returned it (``SEARCHED``, ``SHIFTED``,
    ``DAY_MOVED``), the shift in hours (0 unless shifted) and the whole days the first
    retry moved (0 unless day-moved); per returned retry (``retries``' rows), its own
    probability (module docstring)."""

    retries: RetryRows
    propensity: np.ndarray
    kind: np.ndarray
    shift_hours: np.ndarray
    moved_days: np.ndarray
    retry_propensity: np.ndarray


class _Arms(NamedTuple):
    """Per event, the mass of each arm and where it puts the retries: the searched
    schedule's mass, the valid shifts (events x arms, ``shift``: each arm's in ns) and
    each one's mass, each other first-retry day's mass (0 when none) and the range of
    those days around the searched first retry (``low`` <= 0 <= ``high``)."""

    searched: np.ndarray
    valid: np.ndarray
    shift: np.ndarray
    shift_mass: float
    day_mass: np.ndarray
    low: np.ndarray
    high: np.ndarray
    first_at: np.ndarray


def day_mass(config: PolicyConfig) -> float:
    """The probability of the first-retry-day arm (what ``exploration_rate`` leaves)."""
    rate = config.exploration_rate
    return float(min(config.exploration_first_retry_day_rate, max(1.0 - rate, 0.0)))


def explore(
    ids: np.ndarray,
    retries: RetryRows,
    start: np.ndarray,
    end: np.ndarray,
    spacing_hours: float,
    config: PolicyConfig,
    draw: np.ndarray,
) -> Explored:
    """The schedule each event returns for its uniform ``draw`` (module docstring).

    ``retries``: the searched ones, grouped by event and by time within an event;
    ``start``, ``end`` (exclusive): per event, the times every retry must keep (ns); one
    event's on Python values (:func:`_explore_one`: the same figures)."""
    n = len(ids)
    if n == 1:
        lone = _explore_one(ids[0], retries, int(start[0]), int(end[0]), spacing_hours, config)
        if lone is not None:
            return lone(float(draw[0]))
    shifts = np.array([0, *config.exploration_shifts_hours], dtype=np.int64)
    arms, rate, mass = len(shifts), config.exploration_rate, day_mass(config)
    pos = _positions(ids, retries.event_id)
    at = retries.at
    has = np.bincount(pos, minlength=n) > 0
    # the shifts: arm a's schedule is valid when its first and last retries stay inside
    first_row = group_first(pos)
    last_row = np.empty(len(pos), dtype=bool)
    last_row[:-1], last_row[-1:] = first_row[1:], True
    first_at, last_at = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    first_at[pos[first_row]], last_at[pos[last_row]] = at[first_row], at[last_row]
    moved = shifts * HOUR_NS
    valid = (first_at[:, None] + moved >= start[:, None]) & (
        last_at[:, None] + moved < end[:, None]
    )
    valid &= has[:, None] & (shifts != 0)
    same = (shifts[:, None] == shifts[None, :]).sum(axis=1)  # arms returning one schedule
    # the first retry's day: the other whole days from the searched one inside the window
    low = -np.floor_divide(first_at - start, DAY_NS)
    high = np.floor_divide(end - 1 - first_at, DAY_NS)
    days = np.where(has, np.maximum(high - low + 1 - ((low <= 0) & (high >= 0)), 0), 0)

    cell = np.minimum(np.floor(draw / rate * arms).astype(np.int64), arms - 1) if rate else 0
    arm = np.where(draw < rate, cell, 0)
    arm = np.where(valid[np.arange(n), arm], arm, 0)
    moves = (draw >= rate) & (draw < rate + mass) & (days > 0)
    step = np.zeros(n, dtype=np.int64)
    if moves.any():  # the cell's share of the day arm picks one of the other days
        share = np.minimum((draw - rate) / mass, 1.0 - 1e-12)
        step = low + np.floor(share * days).astype(np.int64)
        step = np.where((low <= 0) & (step >= 0), step + 1, step)  # the searched day skipped
        step = np.where(moves, step, 0)

    searched = 1.0 - rate - mass
    searched += rate / arms * (arms - valid.sum(axis=1)) + np.where(days > 0, 0.0, mass)
    every = _Arms(
        searched,
        valid,
        moved,
        rate / arms,
        np.where(days > 0, mass / np.maximum(days, 1), 0.0),
        low,
        high,
        first_at,
    )
    spacing = int(spacing_hours * HOUR_NS)
    propensity = np.where(arm > 0, rate / arms * same[arm], np.where(moves, 0.0, searched))
    propensity = np.where(moves, mass / np.maximum(days, 1), propensity)
    propensity = np.where(has, propensity, 1.0)
    kind = np.where(moves, DAY_MOVED, np.where(arm > 0, SHIFTED, SEARCHED))
    k = rank_in_group(pos)
    if not (arm > 0).any() and not moves.any():  # nothing moved: the same rows
        own = _retry_marginals(every, pos, at, k, first_row, spacing)
        return Explored(retries, propensity, kind, shifts[arm], step, own)
    new_at = at + shifts[arm[pos]] * HOUR_NS
    new_at = np.where(first_row, new_at + step[pos] * DAY_NS, new_at)
    pushed = cummax_in_group(new_at - k * spacing, pos) + k * spacing  # >= spacing apart
    new_at = np.where(moves[pos], pushed, new_at)
    keep = new_at < end[pos]
    explored = RetryRows(retries.event_id[keep], new_at[keep])
    rows = np.flatnonzero(keep)  # a prefix of each event's ranks: the same rank's row
    own = _retry_marginals(every, pos, at, k, first_row, spacing, (rows, new_at[keep]))
    return Explored(explored, propensity, kind, shifts[arm], step, own)


_FLOOR = np.iinfo(np.int64).min // 4  # below any time, and far enough from overflowing


def _retry_marginals(
    arms: _Arms,
    pos: np.ndarray,
    at: np.ndarray,
    rank: np.ndarray,
    first_row: np.ndarray,
    spacing: int,
    moved: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Per returned retry, the probability that its event's retry of the same rank comes
    at that time, summed over every arm.

    ``at``, ``pos``, ``rank``, ``first_row``: the searched retries, their events'
    positions, ranks and first rows; ``moved``: the searched row of each returned retry
    and its time (``None``: the searched retries were returned). A first-retry-day move
    by ``d`` days puts the k-th retry at ``max(later_k, first + d days + k spacing)``,
    where ``later_k`` (the searched retries 1..k pushed ``spacing`` apart, never before
    the searched k-th) does not depend on ``d``: the time is ``later_k`` for every ``d``
    up to a bound, and ``first + d days + k spacing`` for one ``d`` past it."""
    gap = rank * spacing
    later = cummax_in_group(np.where(first_row, _FLOOR, at - gap), pos) + gap
    own = arms.first_at[pos] + gap  # where a moved first retry pushes the k-th, for d = 0
    low, high = arms.low[pos], arms.high[pos]
    top = np.minimum(high, np.floor_divide(later - own, DAY_NS))  # the largest d leaving it
    kept = np.maximum(top - low + 1, 0) - ((low <= 0) & (top >= 0))
    if moved is None:  # a searched retry is where a shift never puts it, and not past later_k
        count = np.where(at == later, kept, 0)
        return np.minimum(arms.searched[pos] + arms.day_mass[pos] * count, 1.0)
    rows, times = moved
    e, base = pos[rows], at[rows]
    later, own, low, high, kept = later[rows], own[rows], low[rows], high[rows], kept[rows]
    p = np.where(base == times, arms.searched[e], 0.0)
    hits = arms.valid[e] & (base[:, None] + arms.shift[None, :] == times[:, None])
    p = p + arms.shift_mass * hits.sum(axis=1)
    d, rest = np.divmod(times - own, DAY_NS)
    pushed = (rest == 0) & (d >= low) & (d <= high) & (d != 0)
    count = np.where(times == later, kept, np.where(times > later, pushed, 0))
    return np.minimum(p + arms.day_mass[e] * count, 1.0)


class _One(NamedTuple):
    """One event's arms (:class:`_Arms` on Python values) and its searched retries."""

    retries: RetryRows
    at: list[int]
    start: int
    end: int
    shifts: list[int]
    valid: list[bool]
    rate: float
    mass: float
    searched: float
    day_mass: float
    days: int
    low: int
    high: int
    spacing: int

    def __call__(self, draw: float) -> Explored:
        """:func:`explore` of this event for its ``draw``."""
        rate, arms, shifts = self.rate, len(self.shifts), self.shifts
        arm = min(math.floor(draw / rate * arms), arms - 1) if rate and draw < rate else 0
        arm = arm if self.valid[arm] else 0
        moves = rate <= draw < rate + self.mass and self.days > 0
        step = 0
        if moves:  # the cell's share of the day arm picks one of the other days
            share = min((draw - rate) / self.mass, 1.0 - 1e-12)
            step = self.low + math.floor(share * self.days)
            step += 1 if self.low <= 0 and step >= 0 else 0  # the searched day skipped
        if moves:
            propensity = self.mass / max(self.days, 1)
        elif arm > 0:
            propensity = rate / arms * shifts.count(shifts[arm])
        else:
            propensity = self.searched
        kind = DAY_MOVED if moves else SHIFTED if arm > 0 else SEARCHED
        figures = (_floats([propensity]), _ints([kind]), _ints([shifts[arm]]), _ints([step]))
        if arm == 0 and not moves:  # nothing moved: the same rows
            return Explored(self.retries, *figures, _floats(self._marginals()))
        spacing = self.spacing
        new_at = [t + shifts[arm] * HOUR_NS for t in self.at]
        new_at[0] += step * DAY_NS
        if moves:  # pushed >= spacing apart
            top = _FLOOR
            for k, t in enumerate(new_at):
                top = max(top, t - k * spacing)
                new_at[k] = top + k * spacing
        keep = np.array([t < self.end for t in new_at], dtype=bool)
        kept = [t for t in new_at if t < self.end]
        explored = RetryRows(self.retries.event_id[keep], _ints(kept))
        rows = [k for k, t in enumerate(new_at) if t < self.end]
        return Explored(explored, *figures, _floats(self._marginals(rows, kept)))

    def _marginals(
        self, rows: list[int] | None = None, times: list[int] | None = None
    ) -> list[float]:
        """:func:`_retry_marginals` of this event's retries (``rows``: the searched row of
        each returned retry, ``times`` its time; None: the searched retries returned)."""
        at, spacing, low, high = self.at, self.spacing, self.low, self.high
        first = at[0]
        later, top, figures = [], _FLOOR, []
        for k, t in enumerate(at):
            top = max(top, _FLOOR if k == 0 else t - k * spacing)
            later.append(top + k * spacing)
        for k, t in enumerate(at) if rows is None else zip(rows, times or [], strict=True):
            base, own = at[k], first + k * spacing
            last = min(high, (later[k] - own) // DAY_NS)  # the largest d leaving it
            kept = max(last - low + 1, 0) - (low <= 0 and last >= 0)
            if rows is None:
                count = kept if base == later[k] else 0
                figures.append(min(self.searched + self.day_mass * count, 1.0))
                continue
            p = self.searched if base == t else 0.0
            hits = sum(
                1
                for valid, shift in zip(self.valid, self.shifts, strict=True)
                if valid and base + shift * HOUR_NS == t
            )
            p = p + (self.rate / len(self.shifts)) * hits
            d, rest = divmod(t - own, DAY_NS)
            if t == later[k]:
                count = kept
            else:
                count = int(t > later[k] and rest == 0 and low <= d <= high and d != 0)
            figures.append(min(p + self.day_mass * count, 1.0))
        return figures


_BOUND = 2**61
"""Times (ns) a lone event's arms are worked out for on Python integers: far from int64's
limits, where the general path's integers would wrap."""


def _floats(values: list[float]) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def _ints(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _explore_one(
    event_id: object,
    retries: RetryRows,
    start: int,
    end: int,
    spacing_hours: float,
    config: PolicyConfig,
) -> _One | None:
    """:func:`explore`'s arms of one event on Python values (a lone request: numpy's
    ~100 calls on one-element arrays were ~0.6 M instructions); ``None`` (the general
    path) without retries or with a retry of another event."""
    owners = retries.event_id
    if not len(owners) or not (owners == event_id).all() or max(abs(start), abs(end)) > _BOUND:
        return None
    at = retries.at.tolist()
    shifts = [0, *(int(h) for h in np.array(config.exploration_shifts_hours, dtype=np.int64))]
    rate, mass, arms = config.exploration_rate, day_mass(config), len(shifts)
    first, last = at[0], at[-1]
    valid = [s != 0 and first + s * HOUR_NS >= start and last + s * HOUR_NS < end for s in shifts]
    low = -((first - start) // DAY_NS)
    high = (end - 1 - first) // DAY_NS
    days = max(high - low + 1 - (low <= 0 and high >= 0), 0)
    searched = 1.0 - rate - mass
    searched += rate / arms * (arms - sum(valid)) + (0.0 if days > 0 else mass)
    return _One(
        retries,
        at,
        start,
        end,
        shifts,
        valid,
        rate,
        mass,
        searched,
        mass / max(days, 1) if days > 0 else 0.0,
        days,
        low,
        high,
        int(spacing_hours * HOUR_NS),
    )


def message_propensities(count: int) -> np.ndarray:
    """Each returned message's own probability: no arm moves a message (every arm
    returns the searched messages), so it is 1 given the decision's context."""
    return np.ones(count)


def _positions(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in the unique ``ids`` (-1 if absent)."""
    if len(ids) == 1:
        return np.where(values == ids[0], 0, -1)
    return pd.Index(ids).get_indexer(values)


def exploration_reasons(explored: Explored) -> np.ndarray:
    """Per event, the sentence saying its retries were moved to learn ("" when not)."""
    shift, days = explored.shift_hours, explored.moved_days
    shifted = np.char.add(
        np.char.add("to learn, every retry moved ", np.abs(shift).astype(str)),
        np.where(
            shift > 0,
            " h later than searched (exploration)",
            " h earlier than searched (exploration)",
        ),
    )
    day_word = np.where(np.abs(days) == 1, " day ", " days ")
    moved = np.char.add(
        np.char.add(
            np.char.add("to learn, the first retry moved ", np.abs(days).astype(str)), day_word
        ),
        np.where(
            days > 0, "later than searched (exploration)", "earlier than searched (exploration)"
        ),
    )
    kind = explored.kind
    return np.select([kind == SHIFTED, kind == DAY_MOVED], [shifted, moved], default="").astype(
        object
    )


def with_exploration_reasons(reasons: list[list[str]], explored: Explored) -> list[list[str]]:
    """``reasons`` with each explored event's sentence added (the others as they were)."""
    moved = np.flatnonzero(explored.kind != SEARCHED)
    if not len(moved):
        return reasons
    text = exploration_reasons(explored)
    out = list(reasons)
    for i in moved.tolist():  # the explored events only (a few percent)
        out[i] = [*reasons[i], str(text[i])]
    return out

"""The hours after the failure at which the history sent each message template.

A logging policy sends each template in a band of its own: a final notice days after
the failure, a payment link from the first hours on. Outside that band the message
model's value of a template is extrapolation: the trees and the template's calibration
offsets carry what the template did where it was sent to times it never was. On the zoo
at 20,000 invoices the search sent final notices days before any logged one, valued at
about twice what they recovered (night_owls at seed 8: 1,468 of 9,000 planned messages,
0.18 valued against 0.11; docs/evaluation.md, h90). With
``train.model.template_time_support`` (a margin in hours) the message search leaves such
candidates out. With ``train.model.template_time_support_sides: lower`` only the lower
bound applies: a template is never sent earlier than logged, but may be sent later
(other_team's payment links, logged in narrow bands, are still worth sending after them).
With ``train.model.template_time_support_width_fraction`` each template's margin is the
larger of the margin and that fraction of its own band's width: other_team's update
requests (logged 48-129 h, a team that waits two days) stay open from the failure, where
a margin of 24 h cost its hard declines 9 points, and night_owls' final notices
(121-250 h) from 24 h (h96). The default: 24 h, lower side, 0.75.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TemplateSupport:
    """Per template, the smallest and largest ``hours_since_failure`` of its training rows."""

    templates: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def fit(
        cls,
        rows: pd.DataFrame,
        margin_hours: float = 0.0,
        sides: Literal["both", "lower"] = "both",
        width_fraction: float = 0.0,
    ) -> TemplateSupport:
        """The range of ``hours_since_failure`` per ``template`` in ``rows`` (NaN ignored),
        widened either way by ``margin_hours`` or, where larger, ``width_fraction`` times
        the range's own width; with ``sides="lower"`` no upper bound."""
        hours = rows["hours_since_failure"].astype(float)
        by = hours.groupby(rows["template"].astype(str).to_numpy()).agg(["min", "max"]).dropna()
        low, high = by["min"].to_numpy(dtype=float), by["max"].to_numpy(dtype=float)
        margin = np.maximum(margin_hours, width_fraction * (high - low))
        upper = high + margin
        if sides == "lower":
            upper = np.full(len(upper), np.inf)
        return cls(tuple(str(t) for t in by.index), low - margin, upper)

    def bounds(self, templates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bound per template name (unbounded for a template never seen)."""
        index = {t: i for i, t in enumerate(self.templates)}
        at = np.array([index.get(str(t), -1) for t in templates], dtype=np.intp)
        known = at >= 0
        lower = np.where(known, self.lower[np.maximum(at, 0)], -np.inf)
        upper = np.where(known, self.upper[np.maximum(at, 0)], np.inf)
        return lower, upper

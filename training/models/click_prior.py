"""A customer's past click rate per channel, shrunk towards the rows' own rate (empirical Bayes).

The inputs ``cust_email_click_rate`` and ``cust_sms_click_rate`` (and the message model's
``channel_click_rate``, the one of the candidate's channel) are the customer's clicks
over sends as of the decision: 1 of 1 and 3 of 3 read the same, and 0 of 1 reads like
0 of 20. The latent responsiveness they stand for shows in the held-out message rows
(on the default world at 20,000 invoices the observed rate rises five-fold along it,
the model's by a sixth; docs/evaluation.md, h98), while a raw rate from a handful of
sends is mostly noise the trees split on.

With the option, each rate is replaced by its posterior mean under a beta prior fitted
on the model's training rows by the method of moments (rows with at least one send of
the channel): the prior's mean is the rows' pooled rate ``p``, its strength ``m`` (in
sends) comes from how much more the rows' rates vary than binomial noise alone::

    S = sum n_i (r_i - p)^2,   E[S] = p (1 - p) (C + rho (N - C)),   m = 1 / rho - 1

(``C`` rows, ``N`` sends), so the shrunk rate is ``(clicks + m p) / (sends + m)``. A row
without a send of the channel keeps NaN (missing is its own branch, not the prior). The
prior is learned from the training rows only and travels in the model; every scoring
path passes the encoded matrix through :meth:`ClickPrior.apply`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CHANNELS = ("email", "sms")
RATE_COLUMNS = {c: (f"cust_{c}_click_rate", f"cust_{c}_sent") for c in CHANNELS}
CHANNEL_RATE = "channel_click_rate"  # the message model's rate of the candidate's channel
MIN_RHO = 1e-4  # a prior of at most 10,000 sends: rates that hardly vary beyond the noise
MAX_RHO = 0.999  # and of at least ~0 sends: no shrinkage when the rates vary that much


@dataclass(frozen=True)
class ClickPrior:
    """The beta prior of each channel's click rate, and where its columns sit in the
    model's matrix (``positions``: channel -> (rate, sends); ``channel_rate``: the
    position of ``channel_click_rate`` or -1, ``channel``: of ``channel`` or -1,
    ``sms_code``: the encoded value of ``sms`` in it)."""

    rate: dict[str, float]
    sends: dict[str, float]
    positions: dict[str, tuple[int, int]]
    channel_rate: int = -1
    channel: int = -1
    sms_code: float = np.nan

    def describe(self) -> dict[str, float]:
        return {
            **{f"{c}_rate": round(v, 4) for c, v in self.rate.items()},
            **{f"{c}_prior_sends": round(v, 2) for c, v in self.sends.items()},
        }

    def shrink(self, channel: str, rate: np.ndarray, sent: np.ndarray) -> np.ndarray:
        """The posterior mean of ``rate`` over ``sent`` sends (NaN where nothing was sent)."""
        m, p = self.sends[channel], self.rate[channel]
        with np.errstate(invalid="ignore"):
            shrunk = (rate * sent + m * p) / (sent + m)
        return np.where(sent > 0, shrunk, np.nan)

    def apply(self, matrix: np.ndarray) -> np.ndarray:
        """``matrix`` (encoded, the model's columns) with its click rates shrunk, in place;
        returned for chaining."""
        sent = {}
        for channel, (rate_at, sent_at) in self.positions.items():
            sent[channel] = matrix[:, sent_at]
            matrix[:, rate_at] = self.shrink(channel, matrix[:, rate_at], sent[channel])
        if self.channel_rate >= 0 and self.channel >= 0 and len(sent) == len(CHANNELS):
            is_sms = matrix[:, self.channel] == self.sms_code
            rate = matrix[:, self.channel_rate]
            matrix[:, self.channel_rate] = np.where(
                is_sms,
                self.shrink("sms", rate, sent["sms"]),
                self.shrink("email", rate, sent["email"]),
            )
        return matrix

    def apply_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The same on a frame of rows by column name (the training and validation rows
        before they are encoded); a new frame."""
        columns: dict[str, np.ndarray] = {}
        for channel, (rate_name, sent_name) in RATE_COLUMNS.items():
            if rate_name in frame and sent_name in frame:
                columns[rate_name] = self.shrink(
                    channel,
                    frame[rate_name].to_numpy(dtype=float),
                    frame[sent_name].to_numpy(dtype=float),
                )
        if CHANNEL_RATE in frame and "channel" in frame and len(columns) == len(CHANNELS):
            is_sms = (frame["channel"].astype(object) == "sms").to_numpy()
            rate = frame[CHANNEL_RATE].to_numpy(dtype=float)
            sent = {c: frame[RATE_COLUMNS[c][1]].to_numpy(dtype=float) for c in CHANNELS}
            columns[CHANNEL_RATE] = np.where(
                is_sms,
                self.shrink("sms", rate, sent["sms"]),
                self.shrink("email", rate, sent["email"]),
            )
        return frame.assign(**columns)


def moment_prior(rate: np.ndarray, sent: np.ndarray) -> tuple[float, float]:
    """(pooled rate, prior strength in sends) of per-row rates over ``sent`` sends, by the
    method of moments of the beta-binomial (rows without a send are left out)."""
    has = np.nan_to_num(sent, nan=0.0) > 0
    n = sent[has]
    clicks = np.nan_to_num(rate[has], nan=0.0) * n
    total = float(n.sum())
    if total <= 0:
        return 0.0, 0.0
    p = float(clicks.sum()) / total
    if p <= 0.0 or p >= 1.0 or total <= len(n):
        return p, 0.0
    spread = float(np.sum(n * (clicks / n - p) ** 2))
    rho = (spread / (p * (1.0 - p)) - len(n)) / (total - len(n))
    rho = float(np.clip(rho, MIN_RHO, MAX_RHO))
    return p, 1.0 / rho - 1.0


def fit_click_prior(
    rows: pd.DataFrame, features: list[str], categories: dict[str, list[str]]
) -> ClickPrior | None:
    """The prior of each channel's rate from the training ``rows`` (None when the model
    has not both channels' rate and send count as inputs)."""
    if not all(r in features and s in features for r, s in RATE_COLUMNS.values()):
        return None
    rate: dict[str, float] = {}
    sends: dict[str, float] = {}
    positions: dict[str, tuple[int, int]] = {}
    for channel, (r, s) in RATE_COLUMNS.items():
        rate[channel], sends[channel] = moment_prior(
            rows[r].to_numpy(dtype=float), rows[s].to_numpy(dtype=float)
        )
        positions[channel] = (features.index(r), features.index(s))
    channel_rate = features.index(CHANNEL_RATE) if CHANNEL_RATE in features else -1
    channel_at = features.index("channel") if "channel" in features else -1
    labels = categories.get("channel", [])
    sms_code = float(labels.index("sms")) if "sms" in labels else np.nan
    return ClickPrior(rate, sends, positions, channel_rate, channel_at, sms_code)

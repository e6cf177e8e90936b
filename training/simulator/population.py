"""Who fails to pay, and how: simulated customers and their failed invoices.

Returns two frames per table: the public columns of the data contract and the latent
traits only the ground truth knows (pay cycle, fragility, engagement, true reason, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.simulator.localtime import naive_utc
from training.simulator.vocabulary import DEBIT_REASONS, sample_codes, sample_macs, vary_form
from training.simulator.world import (
    CATEGORY_BEHAVIOUR,
    COUNTRIES,
    PAY_CYCLES,
    WorldConfig,
)

REASONS = tuple(CATEGORY_BEHAVIOUR)

# base shares of true decline reasons for cards and for bank debits
CARD_REASON_SHARES = {
    "insufficient_funds": 0.38,
    "limit_exceeded": 0.03,
    "expired_card": 0.12,
    "card_invalid": 0.03,
    "lost_or_stolen": 0.02,
    "fraud_suspected": 0.02,
    "account_closed": 0.02,
    "dispute_or_revoked": 0.01,
    "not_permitted": 0.01,
    "authentication_required": 0.04,
    "do_not_honor": 0.15,
    "issuer_unavailable": 0.05,
    "processing_error": 0.04,
    "duplicate": 0.005,
    "other": 0.025,
}
DEBIT_REASON_SHARES = {
    "insufficient_funds": 0.62,
    "card_invalid": 0.04,
    "account_closed": 0.05,
    "dispute_or_revoked": 0.09,
    "not_permitted": 0.02,
    "do_not_honor": 0.07,
    "processing_error": 0.05,
    "other": 0.06,
}
CARD_PROCESSORS = {"stripe": 0.55, "adyen": 0.25, "braintree": 0.20}
DEBIT_PROCESSOR = {"sepa_debit": "sepa", "bacs_debit": "bacs", "ach_debit": "ach"}
CARD_BRANDS = {"visa": 0.52, "mastercard": 0.34, "amex": 0.08, "discover": 0.02, "other": 0.04}
PLANS = {"basic": (0.6, 1.0), "pro": (0.3, 2.5), "team": (0.1, 6.0)}
FAILURES_PER_YEAR_SCALE = 6.0


@dataclass
class Population:
    customers: pd.DataFrame  # contract columns
    customer_traits: pd.DataFrame  # customer_id + latent traits
    invoices: pd.DataFrame  # contract columns
    invoice_traits: pd.DataFrame  # invoice_id + true reason, raw code, MAC, history counts


def _choice(rng: np.random.Generator, shares: dict[str, float], size: int) -> np.ndarray:
    keys = np.array(list(shares), dtype=object)
    p = np.array(list(shares.values()), dtype=float)
    return rng.choice(keys, size=size, p=p / p.sum())


def _per_group_choice(
    rng: np.random.Generator, groups: np.ndarray, table: dict[str, dict[str, float]]
) -> np.ndarray:
    out = np.empty(len(groups), dtype=object)
    for key, shares in table.items():
        idx = np.flatnonzero(groups == key)
        if len(idx):
            out[idx] = _choice(rng, shares, len(idx))
    return out


def sample_customers(
    n: int, start: pd.Timestamp, world: WorldConfig, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    countries = _choice(rng, {k: v.share for k, v in COUNTRIES.items()}, n)
    tz = np.empty(n, dtype=object)
    for code, profile in COUNTRIES.items():
        idx = np.flatnonzero(countries == code)
        tz[idx] = rng.choice(np.array(profile.timezones, dtype=object), size=len(idx))
    cfg = world.customer
    cycles = _per_group_choice(
        rng,
        countries,
        {k: cfg.pay_cycle_shares or v.pay_cycles for k, v in COUNTRIES.items()},
    )
    tenure_years = np.minimum(
        rng.exponential(cfg.tenure_scale_years, n) + 0.05, cfg.tenure_years_max
    )
    signup = start - pd.to_timedelta(tenure_years * 365.25 * 86400, unit="s")
    signup = signup.floor("s")
    plans = _choice(rng, {k: v[0] for k, v in PLANS.items()}, n)
    ids = np.char.add("cus_", np.arange(1, n + 1).astype(str)).astype(object)

    # peak hour of activity: evening people, morning people, lunch-break people
    kind = rng.choice(3, size=n, p=[0.4, 0.35, 0.25])
    peak = np.select(
        [kind == 0, kind == 1],
        [rng.normal(20, 1.5, n), rng.normal(8, 1.5, n)],
        rng.normal(13, 2, n),
    )
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "country": countries,
            "timezone": tz,
            "signup_at": signup,
            "plan": plans,
            "sms_opt_in": rng.random(n) < cfg.sms_opt_in_share,
        }
    )
    traits = pd.DataFrame(
        {
            "customer_id": ids,
            "pay_cycle": cycles,
            "pay_phase": rng.integers(0, 2, n),
            "fragility": rng.beta(cfg.fragility_alpha, cfg.fragility_beta, n),
            "engagement": rng.normal(0, world.message.engagement_sd, n),
            "sms_preference": rng.normal(0, world.message.sms_preference_sd, n),
            "active_peak_hour": np.mod(
                peak
                + pd.Series(countries).map(world.message.active_hour_shift_by_country).fillna(0.0),
                24,
            ).to_numpy(),
            "billing_day": rng.integers(1, 29, n),
            "billing_second": rng.integers(0, 86400, n),
        }
    )
    assert set(np.unique(cycles)) <= set(PAY_CYCLES)
    return customers, traits


def _reason_matrix(method: np.ndarray, fragility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise probabilities over REASONS: fragile customers run out of money more."""
    card = np.array([CARD_REASON_SHARES.get(r, 0.0) for r in REASONS])
    debit = np.array([DEBIT_REASON_SHARES.get(r, 0.0) for r in REASONS])
    base = np.where((method == "card")[:, None], card[None, :], debit[None, :])
    funds = np.array([r in ("insufficient_funds", "limit_exceeded") for r in REASONS])
    tilt = np.where(funds[None, :], np.exp(2.0 * (fragility[:, None] - 0.3)), 1.0)
    weights = base * tilt
    return weights / weights.sum(axis=1, keepdims=True), np.array(REASONS, dtype=object)


def sample_invoices(
    customers: pd.DataFrame,
    traits: pd.DataFrame,
    n: int,
    start: pd.Timestamp,
    months: int,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    weights = 0.15 + traits["fragility"].to_numpy() * FAILURES_PER_YEAR_SCALE
    owner = rng.choice(len(customers), size=n, p=weights / weights.sum())
    cust = customers.iloc[owner].reset_index(drop=True)
    trait = traits.iloc[owner].reset_index(drop=True)

    month = rng.integers(0, months, n)
    month_start = (start.to_datetime64().astype("datetime64[M]") + month).astype("datetime64[D]")
    due = (
        month_start
        + (trait["billing_day"].to_numpy() - 1).astype("timedelta64[D]")
        + trait["billing_second"].to_numpy().astype("timedelta64[s]")
    ).astype("datetime64[ns]")

    country = cust["country"].to_numpy()
    method = _per_group_choice(rng, country, {k: v.methods for k, v in COUNTRIES.items()})
    processor = np.where(
        method == "card",
        _choice(rng, CARD_PROCESSORS, n),
        pd.Series(method).map(DEBIT_PROCESSOR).to_numpy(),
    )
    # numpy's stubs reject None as a where() branch; at run time it is an object scalar
    brand = np.where(method == "card", _choice(rng, CARD_BRANDS, n), None)  # type: ignore[call-overload]
    brand = np.where((brand == "discover") & (country != "US"), "visa", brand)
    median = pd.Series(country).map({k: v.amount_median_minor for k, v in COUNTRIES.items()})
    plan_factor = cust["plan"].map({k: v[1] for k, v in PLANS.items()}).to_numpy()
    amount = np.maximum(
        1, np.round(median.to_numpy() * plan_factor * rng.lognormal(0, 0.35, n))
    ).astype(np.int64)
    currency = pd.Series(country).map({k: v.currency for k, v in COUNTRIES.items()}).to_numpy()

    probs, names = _reason_matrix(method, trait["fragility"].to_numpy())
    pick = (probs.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1)
    reason = names[np.minimum(pick, len(names) - 1)]
    is_debit = method != "card"
    reason = np.where(is_debit & ~np.isin(reason, DEBIT_REASONS), "other", reason)

    code = vary_form(sample_codes(pd.Series(processor), pd.Series(reason), rng), rng)
    mac = sample_macs(pd.Series(brand), pd.Series(reason), rng)

    ids = np.char.add("in_", np.arange(1, n + 1).astype(str)).astype(object)
    invoices = pd.DataFrame(
        {
            "invoice_id": ids,
            "customer_id": cust["customer_id"].to_numpy(),
            "amount_minor": amount,
            "currency": currency,
            "payment_method": method,
            "card_brand": brand,
            "processor": processor,
            "due_at": pd.to_datetime(due).tz_localize("UTC"),
        }
    )
    invoice_traits = pd.DataFrame(
        {
            "invoice_id": ids,
            "customer_id": invoices["customer_id"].to_numpy(),
            "reason": reason,
            "decline_code": code,
            "merchant_advice_code": mac,
        }
    )
    invoice_traits = invoice_traits.join(_history_counts(invoices, cust["signup_at"]))
    return invoices, invoice_traits


def _history_counts(invoices: pd.DataFrame, signup: pd.Series) -> pd.DataFrame:
    """Failures of the same customer before each invoice: all time and last 12 months."""
    order = np.lexsort((invoices["due_at"].to_numpy(), invoices["customer_id"].to_numpy()))
    cust_code = pd.factorize(invoices["customer_id"].to_numpy()[order])[0].astype(np.int64)
    due_s = naive_utc(invoices["due_at"])[order].astype("datetime64[s]").astype(np.int64)
    span = np.int64(10**10)
    key = cust_code * span + due_s
    before_year = np.searchsorted(key, key - 365 * 86400, side="left")
    first_of_customer = np.searchsorted(key, cust_code * span, side="left")
    rank = np.arange(len(key))
    prior_12m = np.empty(len(key), dtype=np.int64)
    prior_all = np.empty(len(key), dtype=np.int64)
    prior_12m[order] = rank - before_year
    prior_all[order] = rank - first_of_customer
    tenure = (naive_utc(invoices["due_at"]) - naive_utc(signup)).astype("timedelta64[s]").astype(
        np.int64
    ) / (365.25 * 86400)
    return pd.DataFrame(
        {
            "prior_failures_12m": prior_12m,
            "prior_failures_all": prior_all,
            "tenure_years": tenure,
        },
        index=invoices.index,
    )

"""Human-readable explanations and cited sources for the rules engine's decisions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.declines import limits as src
from training.declines.limits import RetryLimits


def rule_sources(rule: np.ndarray, cap_rule: np.ndarray, code_source: np.ndarray) -> np.ndarray:
    """The source to cite for each decision's rule."""
    cap_sources = {
        "visa_reattempt_cap": src.VISA_SOURCE,
        "mastercard_attempt_cap": src.MASTERCARD_SOURCE,
        "card_attempt_cap": src.PRODUCT_SOURCE,
        "ach_representment_cap": src.ACH_SOURCE,
        "ach_reinitiation_window": src.ACH_SOURCE,
        "sepa_representment_cap": src.SEPA_SOURCE,
        "bacs_representment_cap": src.PRODUCT_SOURCE,
        "bacs_representment_window": src.BACS_SOURCE,
    }
    fixed = {
        "mastercard_mac_stop": src.MAC_SOURCE,
        "mastercard_mac_update_first": src.MAC_SOURCE,
        "mastercard_mac_retry_later": src.MAC_SOURCE,
        "unknown_code": src.PRODUCT_SOURCE,
        **cap_sources,
    }
    out = pd.Series(rule).map(fixed)
    from_code = pd.Series(rule).isin(
        ["hard_decline", "not_retryable", "after_update", "payment_method_updated"]
    )
    out = out.mask(from_code, pd.Series(code_source))
    # retry_allowed: the cap that bounds the retries is the rule to cite
    out = out.fillna(pd.Series(cap_rule).map(cap_sources))
    return out.to_numpy()


def explain(
    lim: RetryLimits,
    ev: pd.DataFrame,
    code: pd.DataFrame,
    out: pd.DataFrame,
    cap_rule: np.ndarray,
    in_30d: np.ndarray,
    n_prev: np.ndarray,
    mac_wait: np.ndarray,
) -> pd.Series:
    """One sentence per decision, for support staff and integrators (vectorized)."""
    cap_text = (
        pd.Series(cap_rule)
        .map(
            {
                "visa_reattempt_cap": f"Visa allows at most {lim.visa_max_reattempts_30d} "
                "reattempts in any 30 days",
                "mastercard_attempt_cap": f"Mastercard allows at most "
                f"{lim.mastercard_max_attempts_30d} attempts in 30 days and "
                f"{lim.mastercard_max_attempts_24h} in 24 hours",
                "card_attempt_cap": f"at most {lim.other_card_max_attempts_30d} attempts in "
                "30 days for this card brand",
                "ach_representment_cap": f"Nacha allows at most {lim.ach_max_representments} "
                "reinitiations of a returned entry",
                "sepa_representment_cap": f"at most {lim.sepa_max_representments} "
                "re-presentations of a SEPA collection",
                "bacs_representment_cap": f"at most {lim.bacs_max_representments} "
                "re-presentations of a Bacs Direct Debit",
            }
        )
        .to_numpy(dtype="object")
    )
    counted = (
        pd.Series(in_30d).astype(str)
        + " attempt(s) in the last 30 days, "
        + pd.Series(n_prev).astype(str)
        + " earlier attempt(s) on this charge"
    ).to_numpy(dtype="object")
    texts = {
        "hard_decline": "a hard decline: never retry this card or account; ask for a new "
        "payment method",
        "mastercard_mac_stop": "Mastercard merchant advice code says do not try again "
        "(retries are fined)",
        "not_retryable": "this decline is not retryable; message the customer instead",
        "ach_reinitiation_window": f"past the {lim.ach_reinitiation_window_days}-day "
        "Nacha reinitiation window",
        "bacs_representment_window": f"past the {lim.bacs_representment_window_days}-day "
        "Bacs re-presentation window",
        "mastercard_mac_update_first": "Mastercard merchant advice code: update the "
        "payment method before retrying",
        "after_update": f"no retry until an update is plausible ({lim.update_plausible_after_hours:g} h "
        "after an update-payment-method message, or a reported update)",
        "unknown_code": f"unknown or missing decline code: at most "
        f"{lim.unknown_max_retries} retries, not before {lim.unknown_min_wait_hours:g} h",
        "payment_method_updated": "the payment method was updated: retry allowed",
        "retry_allowed": "retry allowed",
    }
    rule = out["rule"].to_numpy()
    base = pd.Series(rule).map(texts).to_numpy(dtype="object")
    hours = pd.Series(mac_wait).round(2).astype(str).str.replace(r"\.0+$", "", regex=True)
    later = "Mastercard merchant advice code: retry later, after " + hours + " h"
    base = np.where(rule == "mastercard_mac_retry_later", later.to_numpy(dtype="object"), base)
    is_cap = np.isin(rule, list(set(cap_rule.tolist())))
    base = np.where(is_cap, "cap reached: " + cap_text, base)
    with_cap = np.isin(
        rule, ["retry_allowed", "payment_method_updated", "mastercard_mac_retry_later"]
    )
    base = np.where(with_cap, base + "; " + cap_text, base)
    code_text = code["code"].fillna("(none)").astype(str)
    head = (
        ev["processor"].astype(str)
        + " "
        + code_text
        + " -> "
        + out["category"]
        + " (retryable: "
        + out["retryable"]
        + "): "
    )
    return head + pd.Series(base, index=ev.index) + " [" + pd.Series(counted, index=ev.index) + "]"

"""Human-readable explanations and cited sources for the rules engine's decisions.

``word_rows`` words each decision on Python values; the rules engine calls it once per
distinct decision. ``tests/declines/test_declines_fast_paths.py`` keeps the former
vectorized wording as the reference it must equal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from training.config import retry_limits as src
from training.config.retry_limits import RetryLimits

_CAP_SOURCES = {
    "visa_reattempt_cap": src.VISA_SOURCE,
    "mastercard_attempt_cap": src.MASTERCARD_SOURCE,
    "card_attempt_cap": src.PRODUCT_SOURCE,
    "ach_representment_cap": src.ACH_SOURCE,
    "ach_reinitiation_window": src.ACH_SOURCE,
    "sepa_representment_cap": src.SEPA_SOURCE,
    "bacs_representment_cap": src.PRODUCT_SOURCE,
    "bacs_representment_window": src.BACS_SOURCE,
}
_FIXED_SOURCES = {
    "mastercard_mac_stop": src.MAC_SOURCE,
    "mastercard_mac_update_first": src.MAC_SOURCE,
    "mastercard_mac_retry_later": src.MAC_SOURCE,
    "unknown_code": src.PRODUCT_SOURCE,
    **_CAP_SOURCES,
}
_FROM_CODE = (
    "hard_decline",
    "not_retryable",
    "debit_new_details_required",
    "after_update",
    "payment_method_updated",
)
_WITH_CAP = ("retry_allowed", "payment_method_updated", "mastercard_mac_retry_later")
_TRAILING_ZEROS = re.compile(r"\.0+$")


def _cap_texts(lim: RetryLimits) -> dict[str, str]:
    return {
        "visa_reattempt_cap": f"Visa allows at most {lim.visa_max_reattempts_30d} "
        "merchant-initiated reattempts per credential in any 30 days",
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


def _rule_texts(lim: RetryLimits) -> dict[str, str]:
    return {
        "hard_decline": "a hard decline: never retry this card or account; ask for a new "
        "payment method",
        "mastercard_mac_stop": "Mastercard merchant advice code says do not try again "
        "(retries are fined)",
        "not_retryable": "this decline is not retryable; message the customer instead",
        "ach_reinitiation_window": f"past the {lim.ach_reinitiation_window_days}-day "
        "Nacha reinitiation window",
        "bacs_representment_window": f"past the {lim.bacs_representment_window_days}-day "
        "Bacs re-presentation window",
        "debit_new_details_required": "the debited account or mandate needs new details: "
        "never re-present on the same mandate; ask for new bank details (a reported update "
        "allows a collection)",
        "mastercard_mac_update_first": "Mastercard merchant advice code: update the "
        "payment method before retrying",
        "after_update": f"no retry until an update is plausible ({lim.update_plausible_after_hours:g} h "
        "after an update-payment-method message, or a reported update)",
        "unknown_code": f"unknown or missing decline code: at most "
        f"{lim.unknown_max_retries} retries, not before {lim.unknown_min_wait_hours:g} h",
        "payment_method_updated": "the payment method was updated: retry allowed",
        "retry_allowed": "retry allowed",
    }


def word_rows(lim: RetryLimits, parts: Mapping[str, Sequence]) -> tuple[list[str], list]:
    """The explanation (one sentence for support staff and integrators) and the source to
    cite of each decision, row by row on Python values.

    ``parts`` holds one column per name below, as ``RetryRules._decide_arrays`` builds them.
    A source is ``nan`` if neither the rule nor the cap has one.
    """
    caps, texts = _cap_texts(lim), _rule_texts(lim)
    explanations, sources = [], []
    columns = (
        "processor", "code", "category", "retryable", "rule", "cap_rule", "code_source",
        "in_30d", "n_prev", "mac_wait",
    )  # fmt: skip
    for proc, code, category, retryable, rule, cap_rule, code_source, in_30d, n_prev, wait in zip(
        *(parts[name] for name in columns), strict=True
    ):
        if rule == cap_rule:  # the cap itself is the rule (cap_rule is never empty)
            base = "cap reached: " + caps[rule]
        elif rule == "mastercard_mac_retry_later":
            hours = _TRAILING_ZEROS.sub("", str(float(np.round(wait, 2))))
            base = f"Mastercard merchant advice code: retry later, after {hours} h"
        else:
            base = texts[rule]
        if rule in _WITH_CAP:
            base = f"{base}; {caps[cap_rule]}"
        code_text = "(none)" if code is None or code is pd.NA else str(code)
        explanations.append(
            f"{proc} {code_text} -> {category} (retryable: {retryable}): {base} "
            f"[{in_30d} attempt(s) in the last 30 days, {n_prev} earlier attempt(s) on "
            "this charge]"
        )
        source = code_source if rule in _FROM_CODE else _FIXED_SOURCES.get(rule)
        if source is None or source is pd.NA or (isinstance(source, float) and source != source):
            source = _CAP_SOURCES.get(cap_rule, np.nan)
        sources.append(source)
    return explanations, sources

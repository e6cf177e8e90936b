"""How the simulated processors *say* a decline: raw codes in each one's own vocabulary.

The world knows the true reason of a failure; a processor reports it as one of its own
codes, with realistic frequencies (e.g. Stripe reports many soft declines as
``generic_decline``). This table is the world's, independent of the product's decline
reference table, so the product's mapping is tested on the simulator rather than
assumed by it. A small share of codes is written in other forms (case, spaces,
display names) as real exports do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# processor -> true reason -> "code:weight ..." (weights relative within the cell)
EMISSIONS: dict[str, dict[str, str]] = {
    "stripe": {
        "insufficient_funds": "insufficient_funds:90 card_velocity_exceeded:4 generic_decline:6",
        "limit_exceeded": "card_velocity_exceeded:50 withdrawal_count_limit_exceeded:30 insufficient_funds:20",
        "expired_card": "expired_card:95 invalid_expiry_year:3 invalid_expiry_month:2",
        "card_invalid": "incorrect_number:40 invalid_number:30 invalid_account:20 card_not_supported:10",
        "lost_or_stolen": "lost_card:55 stolen_card:30 pickup_card:15",
        "fraud_suspected": "fraudulent:70 merchant_blacklist:10 security_violation:20",
        "account_closed": "invalid_account:60 new_account_information_available:40",
        "dispute_or_revoked": "revocation_of_authorization:60 stop_payment_order:40",
        "not_permitted": "transaction_not_allowed:60 restricted_card:25 service_not_allowed:15",
        "authentication_required": "authentication_required:85 offline_pin_required:5 online_or_offline_pin_required:10",
        "do_not_honor": "do_not_honor:45 generic_decline:45 call_issuer:5 no_action_taken:5",
        "issuer_unavailable": "issuer_not_available:70 try_again_later:30",
        "processing_error": "processing_error:80 reenter_transaction:20",
        "duplicate": "duplicate_transaction:100",
        "other": "generic_decline:70 approve_with_id:10 currency_not_supported:5 card_declined:15",
    },
    "adyen": {
        "insufficient_funds": "Not enough balance:100",
        "limit_exceeded": "Withdrawal amount exceeded:60 Withdrawal count exceeded:40",
        "expired_card": "Expired Card:100",
        "card_invalid": "Invalid Card Number:70 Not supported:30",
        "lost_or_stolen": "Blocked Card:100",
        "fraud_suspected": "FRAUD:50 Issuer Suspected Fraud:50",
        "account_closed": "Blocked Card:30 Invalid Card Number:70",
        "dispute_or_revoked": "Revocation Of Auth:100",
        "not_permitted": "Transaction Not Permitted:70 Restricted Card:30",
        "authentication_required": "Authentication required:70 3D Not Authenticated:30",
        "do_not_honor": "Refused:70 Declined Non Generic:30",
        "issuer_unavailable": "Issuer Unavailable:100",
        "processing_error": "Acquirer Error:100",
        "duplicate": "Refused:100",
        "other": "Refused:80 Cancelled:20",
    },
    "braintree": {
        "insufficient_funds": "2001:100",
        "limit_exceeded": "2002:60 2003:40",
        "expired_card": "2004:85 2006:10 2022:5",
        "card_invalid": "2005:70 2008:15 2009:15",
        "lost_or_stolen": "2012:40 2013:30 2053:15 2047:15",
        "fraud_suspected": "2014:100",
        "account_closed": "2007:100",
        "dispute_or_revoked": "2015:100",
        "not_permitted": "2015:70 2057:30",
        "authentication_required": "2099:100",
        "do_not_honor": "2000:60 2046:30 2044:10",
        "issuer_unavailable": "3000:100",
        "processing_error": "2038:100",
        "duplicate": "2016:100",
        "other": "2046:100",
    },
    "sepa": {
        "insufficient_funds": "AM04:100",
        "limit_exceeded": "AM04:100",
        "card_invalid": "AC01:70 AC06:30",
        "account_closed": "AC04:100",
        "dispute_or_revoked": "MD01:40 MS02:40 MD06:20",
        "not_permitted": "AG01:100",
        "do_not_honor": "MS03:100",
        "issuer_unavailable": "MS03:100",
        "processing_error": "FF05:50 MS03:50",
        "duplicate": "AM05:100",
        "other": "MS03:100",
    },
    "bacs": {
        "insufficient_funds": "0:100",
        "limit_exceeded": "0:100",
        "card_invalid": "5:100",
        "account_closed": "B:70 3:30",
        "dispute_or_revoked": "1:70 6:30",
        "not_permitted": "6:100",
        "do_not_honor": "0:100",
        "issuer_unavailable": "0:100",
        "processing_error": "9:100",
        "duplicate": "8:100",
        "other": "0:100",
    },
    "ach": {
        "insufficient_funds": "R01:85 R09:15",
        "limit_exceeded": "R01:100",
        "card_invalid": "R03:50 R04:50",
        "account_closed": "R02:80 R16:20",
        "dispute_or_revoked": "R07:30 R10:50 R08:20",
        "not_permitted": "R20:50 R29:50",
        "do_not_honor": "R01:100",
        "issuer_unavailable": "R01:100",
        "processing_error": "R01:100",
        "duplicate": "R01:100",
        "other": "R01:100",
    },
}

# debit schemes have no card-specific reasons; the world maps them to the nearest one
DEBIT_REASONS = (
    "insufficient_funds",
    "card_invalid",
    "account_closed",
    "dispute_or_revoked",
    "not_permitted",
    "do_not_honor",
    "processing_error",
    "other",
)

# Mastercard merchant advice codes, per true reason: "code:weight" with "-" for none
MAC_EMISSIONS: dict[str, str] = {
    "insufficient_funds": "-:70 02:15 24:2 25:4 26:4 27:3 28:1 29:0.5 30:0.5",
    "limit_exceeded": "-:75 02:20 25:5",
    "expired_card": "-:40 01:60",
    "card_invalid": "-:60 01:20 03:20",
    "lost_or_stolen": "-:30 03:70",
    "fraud_suspected": "-:40 03:60",
    "account_closed": "-:30 03:70",
    "dispute_or_revoked": "-:20 21:80",
    "do_not_honor": "-:85 02:15",
}

MAC_RETRY_AFTER_HOURS: dict[str, float] = {
    "24": 1,
    "25": 24,
    "26": 48,
    "27": 96,
    "28": 144,
    "29": 192,
    "30": 240,
}


def _parse(cell: str) -> tuple[np.ndarray, np.ndarray]:
    codes, weights = zip(*(item.rsplit(":", 1) for item in _split(cell)), strict=True)
    w = np.array(weights, dtype=float)
    return np.array(codes, dtype=object), w / w.sum()


def _split(cell: str) -> list[str]:
    """Split "code:w code:w" where codes may contain spaces (Adyen display names)."""
    parts: list[str] = []
    current: list[str] = []
    for token in cell.split(" "):
        current.append(token)
        if ":" in token:
            parts.append(" ".join(current))
            current = []
    return parts


def sample_codes(processor: pd.Series, reason: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """One raw decline code per row, in the row's processor's vocabulary."""
    out = np.empty(len(processor), dtype=object)
    keys = pd.DataFrame({"p": processor.to_numpy(), "r": reason.to_numpy()})
    for (proc, why), index in keys.groupby(["p", "r"], sort=False).indices.items():
        cell = EMISSIONS[proc].get(why) or EMISSIONS[proc]["other"]
        codes, probs = _parse(cell)
        out[index] = rng.choice(codes, size=len(index), p=probs)
    return out


def sample_macs(card_brand: pd.Series, reason: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """Mastercard merchant advice codes (None for other brands and most declines)."""
    out = np.full(len(reason), None, dtype=object)
    is_mc = card_brand.to_numpy() == "mastercard"
    reasons = reason.to_numpy()
    for why, cell in MAC_EMISSIONS.items():
        index = np.flatnonzero(is_mc & (reasons == why))
        if len(index) == 0:
            continue
        codes, probs = _parse(cell)
        drawn = rng.choice(codes, size=len(index), p=probs)
        # numpy's stubs reject None as a where() branch; at run time it is an object scalar
        out[index] = np.where(drawn == "-", None, drawn)  # type: ignore[call-overload]
    return out


def vary_form(codes: np.ndarray, rng: np.random.Generator, share: float = 0.02) -> np.ndarray:
    """Write a few codes as exports sometimes do: other case, stray spaces."""
    out = codes.copy()
    pick = rng.random(len(out)) < share
    styles = rng.integers(0, 3, size=len(out))
    series = pd.Series(out[pick], dtype=object)
    varied = np.select(
        [styles[pick] == 0, styles[pick] == 1],
        [series.str.upper(), " " + series + " "],
        default=series.str.lower(),
    )
    out[pick] = varied
    return out

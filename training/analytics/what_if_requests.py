"""Recommendation requests to explore in the what-if notebook (03): typed by hand and
validated as the API validates them, rebuilt from an invoice of a history, or derived
from another request with one field changed (a decline category, a time zone, the
constraints).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from training.api.from_history import history_requests
from training.artifact.decision_artifact import DecisionArtifact
from training.config.params import Params
from training.config.request_defaults import DEFAULT_CONSTRAINTS
from training.contract.history import History
from training.contract.tables import CUSTOMER_FIELDS
from training.declines.table import load_decline_table


def check_request(event: Mapping[str, Any]) -> dict[str, Any]:
    """The request validated as the API validates it (contract v1), as plain values.

    A bad request raises ``ValueError`` naming the field, with the API's message.
    """
    from training.api.schemas import RecommendationRequest
    from training.api.service import validate_item

    checked = validate_item(dict(event))
    if not isinstance(checked, RecommendationRequest):
        error = checked.error
        raise ValueError(f"invalid request ({error.code}) at {error.field}: {error.message}")
    return checked.model_dump(mode="json")


def request_for_invoice(history: History, invoice_id: str) -> dict[str, Any]:
    """The request the billing system would have sent at the invoice's failed charge."""
    if invoice_id not in set(history.invoices["invoice_id"]):
        raise ValueError(f"invoice_id {invoice_id!r} is not in the history's invoices")
    one = History(
        customers=history.customers,
        invoices=history.invoices[history.invoices["invoice_id"] == invoice_id],
        attempts=history.attempts[history.attempts["invoice_id"] == invoice_id],
        messages=history.messages[history.messages["invoice_id"] == invoice_id],
    )
    requests = history_requests(one)
    if not requests:
        raise ValueError(f"invoice {invoice_id!r} has no failed merchant attempt to decide on")
    return requests[0]


def held_out_invoice(
    history: History,
    artifact: DecisionArtifact,
    params: Params,
    category: str | None = "insufficient_funds",
    processor: str | None = "stripe",
    seed: int = 0,
) -> str:
    """An invoice of the period the model never saw (closed window), preferring the given
    decline category and processor when the period has any; ``seed`` picks which."""
    from training.evaluation.run import held_out_events

    held = held_out_events(history, artifact, params)
    classified = artifact.decline_table.classify(held["processor"], held["decline_code"])
    preferred = np.ones(len(held), dtype=bool)
    if category is not None:
        preferred &= (classified["category"] == category).to_numpy()
    if category is not None and processor is not None:
        both = preferred & (held["processor"] == processor).to_numpy()
        preferred = both if both.any() else preferred
    pool = held[preferred] if preferred.any() else held
    return str(pool.sample(1, random_state=seed)["invoice_id"].iloc[0])


def decline_code_for(processor: str, category: str) -> str | None:
    """A decline code of ``processor`` in ``category`` (the table's first), or None."""
    codes = load_decline_table().codes(processor, category)
    return codes[0] if codes else None


def changed(request: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``request`` with top-level fields, ``customer`` fields (``timezone``,
    ``sms_opt_in``, ...) or ``constraints`` fields replaced; ``decline_category`` picks
    the processor's code of that category."""
    out = copy.deepcopy(dict(request))
    customer_fields = set(CUSTOMER_FIELDS)
    constraint_fields = set(DEFAULT_CONSTRAINTS)
    for name, value in changes.items():
        if name == "decline_category":
            code = decline_code_for(out["processor"], value)
            if code is None:
                raise ValueError(f"processor {out['processor']!r} has no decline code in {value!r}")
            out["decline_code"] = code
            out["merchant_advice_code"] = None
        elif name in customer_fields:
            out["customer"] = {**(out.get("customer") or {}), name: value}
        elif name in constraint_fields:
            out["constraints"] = {**(out.get("constraints") or {}), name: value}
        elif name in out or name in {"card_brand", "merchant_advice_code", "previous_attempts"}:
            out[name] = value
        else:
            raise ValueError(f"cannot change {name!r}: not a field of a recommendation request")
    return out


def decline_variants(
    request: Mapping[str, Any], categories: list[str]
) -> dict[str, dict[str, Any]]:
    """The request with the processor's code of each decline category, by name
    (``"expired_card (expired_card)"``); categories the processor has no code for are
    left out."""
    out = {}
    for category in categories:
        code = decline_code_for(request["processor"], category)
        if code is not None:
            out[f"{category} ({code})"] = changed(request, decline_category=category)
    return out


def starting_request(
    event: Mapping[str, Any] | None,
    history: History | None,
    invoice_id: str | None,
    artifact: DecisionArtifact,
    params: Params,
    seed: int = 0,
) -> dict[str, Any]:
    """The request to explore: ``event`` when given, else the invoice's (``invoice_id``,
    or one picked from the held-out period with ``seed``)."""
    if event is not None:
        return check_request(event)
    if history is None:
        raise ValueError("give an event (a request in the API contract) or a history_dir")
    if invoice_id is None:
        invoice_id = held_out_invoice(history, artifact, params, seed=seed)
    return check_request(request_for_invoice(history, invoice_id))


def standard_variants(
    request: Mapping[str, Any],
    decline_categories: list[str],
    timezone: str | None = None,
    constraints: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """The request as given, then one change at a time: each decline category (the
    processor's code; the request's own category and categories the processor has no
    code for are left out), another time zone, other constraints."""
    own = (
        load_decline_table()
        .classify(pd.Series([request["processor"]]), pd.Series([request["decline_code"]]))[
            "category"
        ]
        .iloc[0]
    )
    variants = {"as given": dict(request)}
    variants.update(decline_variants(request, [c for c in decline_categories if c != own]))
    if timezone:
        variants[f"time zone {timezone}"] = changed(request, timezone=timezone)
    if constraints:
        label = ", ".join(
            f"{k}={'+'.join(v) if isinstance(v, list | tuple) else v}"
            for k, v in constraints.items()
        )
        variants[f"constraints {label}"] = changed(request, **constraints)
    return variants

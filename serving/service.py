"""The recommendation logic shared by the API routes and batch scoring.

``recommend`` is the single code path from request items to responses: validate each item
(one bad item gives an :class:`ItemError` and does not stop the others), build the
``events`` frames, ask the decider, and turn its :class:`Decisions` into responses.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from serving.errors import ApiError, from_validation_error
from serving.schemas import (
    ItemError,
    RecommendationRequest,
    RecommendationResponse,
)
from serving.sensitive import scan
from training.policy.decisions import Decider, Decisions
from training.policy.events import requests_to_frames

logger = logging.getLogger(__name__)

Result = RecommendationResponse | ItemError


def _invoice_id(item: Any) -> str | None:
    if isinstance(item, Mapping) and isinstance(item.get("invoice_id"), str):
        return item["invoice_id"]
    return None


def validate_item(item: Any, prefix: str = "") -> RecommendationRequest | ItemError:
    """One request item: sensitive-data scan, then the contract's validation."""
    if isinstance(item, RecommendationRequest | ItemError):
        return item
    try:
        scan(item, prefix)
        return RecommendationRequest.model_validate(item)
    except ApiError as error:
        return ItemError(invoice_id=_invoice_id(item), error=error.body)
    except ValidationError as error:
        return ItemError(invoice_id=_invoice_id(item), error=from_validation_error(error, prefix))


def _probability(value: Any) -> float | None:
    return (
        None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    )


def responses_from_decisions(
    requests: Sequence[RecommendationRequest],
    event_ids: Sequence[str],
    decisions: Decisions,
    model_version: str,
) -> list[RecommendationResponse]:
    """One response per request, in order, from the decider's long-format frames."""
    retries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in decisions.retries.sort_values(["event_id", "at"]).to_dict("records"):
        retries[row["event_id"]].append(
            {
                "at": row["at"].to_pydatetime(),
                "success_probability": _probability(row.get("success_probability")),
            }
        )
    messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in decisions.messages.sort_values(["event_id", "send_at"]).to_dict("records"):
        messages[row["event_id"]].append(
            {
                "send_at": row["send_at"].to_pydatetime(),
                "channel": row["channel"],
                "template": row["template"],
                "response_probability": _probability(row.get("response_probability")),
            }
        )
    by_event = decisions.events.set_index("event_id").to_dict("index")
    responses = []
    for request, event_id in zip(requests, event_ids, strict=True):
        event = by_event[event_id]
        responses.append(
            RecommendationResponse.model_validate(
                {
                    "invoice_id": request.invoice_id,
                    "model_version": model_version,
                    "decline": {
                        "category": event["decline_category"],
                        "retryable": event["retryable"],
                    },
                    "retries": retries.get(event_id, []),
                    "messages": messages.get(event_id, []),
                    "expected_recovery_probability": _probability(
                        event["expected_recovery_probability"]
                    ),
                    "baseline_recovery_probability": _probability(
                        event["baseline_recovery_probability"]
                    ),
                    "decision_id": event["decision_id"],
                    "propensity": float(event["propensity"]),
                    "reasons": list(event["reasons"]),
                    "fallback": bool(event["fallback"]),
                }
            )
        )
    return responses


LOOKUP_FIELDS = ("country", "timezone", "signup_at", "sms_opt_in")


def customers_to_look_up(validated: Sequence[RecommendationRequest | ItemError]) -> list[str]:
    """Customer ids of the valid requests whose ``customer`` leaves a field out (only those
    need what the service knows about them)."""
    return [
        v.customer_id
        for v in validated
        if isinstance(v, RecommendationRequest)
        and (v.customer is None or any(getattr(v.customer, f) is None for f in LOOKUP_FIELDS))
    ]


def customer_knowledge(
    decider: Decider,
    customer_ids: Sequence[str],
    stored: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """What the service knows about these customers, field by field.

    A decider may know customers from its training history through an optional method
    ``known_customers(ids) -> {customer_id: {field: value}}``; values stored from earlier
    requests (``stored``) are newer and win over it. The request's own values win over
    both (in :func:`training.policy.events.requests_to_frames`).
    """
    lookup = getattr(decider, "known_customers", None)
    known = {k: dict(v) for k, v in lookup(list(customer_ids)).items()} if callable(lookup) else {}
    for customer_id, fields in stored.items():
        known.setdefault(customer_id, {}).update({k: v for k, v in fields.items() if v is not None})
    return known


def decide(
    decider: Decider,
    requests: Sequence[RecommendationRequest],
    known_customers: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[RecommendationResponse]:
    """Responses for validated requests, in order."""
    if not requests:
        return []
    event_ids = [str(i) for i in range(len(requests))]
    events, previous = requests_to_frames(
        [r.model_dump() for r in requests], event_ids, known_customers or {}
    )
    decisions = decider.decide(events, previous)
    return responses_from_decisions(requests, event_ids, decisions, decider.model_version)


def recommend(
    decider: Decider,
    items: Sequence[Any],
    *,
    known_customers: Mapping[str, Mapping[str, Any]] | None = None,
    fallback: Decider | None = None,
    prefix: str = "items",
) -> list[Result]:
    """Validate every item and answer the valid ones; errors keep their position.

    ``items`` may be raw JSON objects, validated requests or item errors (passed through). When the decider raises,
    ``fallback`` (if given) answers instead, so a broken model never breaks the API.
    """
    validated = [
        validate_item(item, f"{prefix}[{i}]" if prefix else "") for i, item in enumerate(items)
    ]
    valid = [v for v in validated if isinstance(v, RecommendationRequest)]
    try:
        answered = decide(decider, valid, known_customers)
    except Exception:
        if fallback is None or fallback is decider:
            raise
        logger.exception("decider %s failed; answering with the fallback", decider.model_version)
        answered = decide(fallback, valid, known_customers)
    answers = iter(answered)
    return [next(answers) if isinstance(v, RecommendationRequest) else v for v in validated]

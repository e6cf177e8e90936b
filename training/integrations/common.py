"""What a vendor event means to smartretry, whatever system sent it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Kind = Literal["failure", "outcome", "card_update", "ignored"]


class MalformedEvent(ValueError):
    """The event lacks a field its type needs; ``field`` names it (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class MappedEvent:
    """``request``: a ``RecommendationRequest`` body (failure); ``outcome``: an outcome
    event body (outcome; card_update: its ``payment_method_updated`` event);
    ``customer_id``: whose card changed (card_update); ``reason``:
    why an event is ignored. Bodies are plain JSON dicts so they take the same validation
    as the API's own requests."""

    event_id: str
    event_type: str
    kind: Kind
    request: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    customer_id: str | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def card_update(
    source: str, event_id: str, event_type: str, customer_id: str, occurred_at: str
) -> MappedEvent:
    """A card update, with the ``payment_method_updated`` outcome event it is stored as."""
    outcome = {
        "event_id": f"{source}:{event_id}",
        "type": "payment_method_updated",
        "customer_id": customer_id,
        "occurred_at": occurred_at,
    }
    return MappedEvent(
        event_id, event_type, "card_update", outcome=outcome, customer_id=customer_id
    )


def require(obj: dict[str, Any], path: str) -> Any:
    """``obj``'s value at the dotted ``path``; :class:`MalformedEvent` when missing."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or value.get(part) is None:
            raise MalformedEvent(path, "field required")
        value = value[part]
    return value


def optional(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or value.get(part) is None:
            return None
        value = value[part]
    return value


def from_unix(seconds: Any, path: str) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise MalformedEvent(path, "must be a Unix timestamp (integer seconds)")
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


CARD_BRANDS = {
    "visa": "visa",
    "mastercard": "mastercard",
    "mc": "mastercard",
    "amex": "amex",
    "american express": "amex",
    "discover": "discover",
}


def card_brand(raw: Any) -> str:
    """A processor's brand name in the contract's vocabulary (``other`` when not listed)."""
    return CARD_BRANDS.get(str(raw).lower(), "other") if raw else "other"

"""Request and response models of API contract v1 (../shared/spec/api-contract.md).

Strict on purpose: unknown fields, unknown enum values, naive or unparsable timestamps,
floats or strings where integers belong, and non-positive amounts are refused with 422
instead of being guessed at. Field names are the contract's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import available_timezones

import pycountry
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from training.contract.tables import CARD_BRANDS, CHANNELS, PAYMENT_METHODS, PROCESSORS

PaymentMethod = Literal[PAYMENT_METHODS]  # type: ignore[valid-type]
CardBrand = Literal[CARD_BRANDS]  # type: ignore[valid-type]
Processor = Literal[PROCESSORS]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
Retryable = Literal["yes", "no", "after_update"]
EventType = Literal["attempt", "message_sent", "message_opened", "message_clicked"]

# explicit character classes: Python's ``re`` and the JSON-schema (ECMA 262) engines agree
# on them, while ``\S`` and ``.`` differ between the two (found by fuzzing)
Id = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$",
    ),
]
Code = Annotated[str, Field(min_length=1, max_length=100)]


def _whole_number(value: object) -> object:
    """JSON has one number type: ``4900.0`` is the integer 4900 (as JSON schema's
    ``integer`` says); other floats stay floats and are refused (strict integers)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_WHOLE = BeforeValidator(_whole_number)
MAX_SAFE_INTEGER = 2**53 - 1  # exact in every JSON parser, and in 64-bit store columns
MerchantAdviceCode = Annotated[str, Field(pattern=r"^[0-9]{2}$")]


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def _check_country(code: str) -> str:
    if code not in _countries():
        raise PydanticCustomError("invalid_country", "not an ISO 3166-1 alpha-2 country code")
    return code


def _check_currency(code: str) -> str:
    if code not in _currencies():
        raise PydanticCustomError("invalid_currency", "not an ISO 4217 currency code")
    return code


def _check_timezone(name: str) -> str:
    if name not in _timezones():
        raise PydanticCustomError(
            "invalid_timezone", "not an IANA time zone name (e.g. Europe/Amsterdam)"
        )
    return name


def _listed(values: Callable[[], frozenset[str]]) -> Callable[[dict[str, Any]], None]:
    """The accepted values as the JSON schema's ``enum`` (built when the document is, not
    at import), so the OpenAPI document says exactly what the validator accepts."""

    def extra(schema: dict[str, Any]) -> None:
        schema["enum"] = sorted(values())

    return extra


TimeZone = Annotated[
    str, Field(json_schema_extra=_listed(_timezones)), AfterValidator(_check_timezone)
]
Country = Annotated[
    str,
    Field(pattern=r"^[A-Z]{2}$", json_schema_extra=_listed(_countries)),
    AfterValidator(_check_country),
]
Currency = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", json_schema_extra=_listed(_currencies)),
    AfterValidator(_check_currency),
]


def _required_when(field: str, value: str, required: str) -> dict[str, Any]:
    """JSON-schema ``if``/``then``: ``required`` must be a non-null value when ``field`` is
    ``value`` (the row rules below, stated in the document too)."""
    return {
        "if": {"properties": {field: {"const": value}}, "required": [field]},
        "then": {"required": [required], "properties": {required: {"type": "string"}}},
    }


FIRST_YEAR, LAST_YEAR = 1970, 2199


def _check_year(value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise PydanticCustomError(
            "timestamp_out_of_range", f"year must be {FIRST_YEAR} to {LAST_YEAR}"
        )
    return value


# Timestamps beyond pandas' range (1677-2262) crashed even the rules fallback (found by
# fuzzing); the bound is in the document too, as a pattern on the year.
Timestamp = Annotated[
    AwareDatetime,
    AfterValidator(_check_year),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": r"^(19[7-9][0-9]|2[01][0-9]{2})-"}
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PreviousAttempt(Strict):
    """An earlier attempt on the same charge. ``initiated_by`` (default ``merchant``):
    Visa counts customer-initiated attempts apart from the merchant's reattempts."""

    attempted_at: Timestamp
    decline_code: Code | None = None
    merchant_advice_code: MerchantAdviceCode | None = None
    initiated_by: Literal["merchant", "customer"] = "merchant"


class Customer(Strict):
    """Optional per field: what is missing comes from what the service knows, else defaults."""

    country: Country | None = None
    timezone: TimeZone | None = None
    signup_at: Timestamp | None = None
    sms_opt_in: StrictBool | None = None
    plan: Annotated[str, Field(max_length=200)] | None = None


class Constraints(Strict):
    """Defaults: max_retries 4, window_days 14, max_messages 3, channels email and sms."""

    # bounds before the whole-number step, so they stay in the JSON schema as bounds
    max_retries: Annotated[int, Field(strict=True, ge=0, le=20), _WHOLE] | None = None
    window_days: Annotated[int, Field(strict=True, ge=1, le=90), _WHOLE] | None = None
    max_messages: Annotated[int, Field(strict=True, ge=0, le=20), _WHOLE] | None = None
    channels: Annotated[list[Channel], Field(max_length=2)] | None = None


class RecommendationRequest(Strict):
    """One failed charge. Row rules: ``card_brand`` is required for cards (stated in the
    schema as ``if``/``then``); every ``previous_attempts[].attempted_at`` must be before
    ``failed_at`` (a comparison JSON schema cannot state; answered 422
    ``attempt_after_failure``)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra=_required_when("payment_method", "card", "card_brand"),
    )

    invoice_id: Id
    customer_id: Id
    amount_minor: Annotated[int, Field(strict=True, gt=0, le=MAX_SAFE_INTEGER), _WHOLE]
    currency: Currency
    payment_method: PaymentMethod
    card_brand: CardBrand | None = None
    processor: Processor
    decline_code: Code
    merchant_advice_code: MerchantAdviceCode | None = None
    failed_at: Timestamp
    previous_attempts: Annotated[list[PreviousAttempt], Field(max_length=100)] = []
    customer: Customer | None = None
    constraints: Constraints | None = None
    payment_method_updated_at: Timestamp | None = Field(
        None,
        description="Extension of contract v1: when the customer last updated the payment "
        "method. After the first attempt, an after_update decline may be retried; when left "
        "out, the service fills it from stored payment_method_updated outcome events.",
    )

    @model_validator(mode="after")
    def _row_rules(self) -> RecommendationRequest:
        if self.payment_method == "card" and self.card_brand is None:
            raise PydanticCustomError("card_brand_required", "card_brand is required for cards")
        for attempt in self.previous_attempts:
            if attempt.attempted_at > self.failed_at:
                raise PydanticCustomError(
                    "attempt_after_failure", "previous_attempts must be before failed_at"
                )
        return self


BATCH_ITEM_SCHEMA: dict[str, Any] = {
    "description": "any JSON value, meant to be a RecommendationRequest (#/components/schemas/RecommendationRequest); "
    "each item is validated on its own: a bad item gets a per-item error in the 200 answer",
}


class BatchRequest(Strict):
    """Items are validated one by one, so one bad item does not fail the others: the
    document therefore accepts any value as an item (its errors are in the answer)."""

    items: Annotated[
        list[RecommendationRequest],
        Field(min_length=1),
        WithJsonSchema({"type": "array", "minItems": 1, "items": BATCH_ITEM_SCHEMA}),
    ]


class Decline(BaseModel):
    category: str
    retryable: Retryable


class Retry(BaseModel):
    at: datetime
    success_probability: float | None


class Message(BaseModel):
    send_at: datetime
    channel: Channel
    template: str
    response_probability: float | None


class RowPropensities(NamedTuple):
    """Each returned retry's and message's own probability under the exploration, in the
    response's order (the response's ``propensity`` is the whole schedule's)."""

    retries: list[float]
    messages: list[float]


class RecommendationResponse(BaseModel):
    invoice_id: str
    model_version: str
    decline: Decline
    retries: list[Retry]
    messages: list[Message]
    expected_recovery_probability: float | None
    baseline_recovery_probability: float | None
    decision_id: str
    propensity: float
    reasons: list[str]
    fallback: bool
    # not part of the answer: stored with the decision for export-outcomes
    _row_propensities: RowPropensities | None = PrivateAttr(default=None)

    @property
    def row_propensities(self) -> RowPropensities | None:
        """The rows' own propensities when the decider gave them (``None``: not known)."""
        return self._row_propensities

    def keep_row_propensities(self, retries: list[float], messages: list[float]) -> None:
        self._row_propensities = RowPropensities(retries, messages)


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ItemError(BaseModel):
    invoice_id: str | None
    error: ErrorBody


class BatchResponse(BaseModel):
    items: list[RecommendationResponse | ItemError]


class _Event(Strict):
    event_id: Id
    invoice_id: Id
    occurred_at: Timestamp
    decision_id: Id | None = None


class AttemptEvent(_Event):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra=_required_when("outcome", "failed", "decline_code"),
    )

    type: Literal["attempt"]
    attempt_id: Id | None = None
    initiated_by: Literal["merchant", "customer"]
    outcome: Literal["succeeded", "failed"]
    decline_code: Code | None = None
    merchant_advice_code: MerchantAdviceCode | None = None

    @model_validator(mode="after")
    def _decline_when_failed(self) -> AttemptEvent:
        if self.outcome == "failed" and self.decline_code is None:
            raise PydanticCustomError(
                "decline_code_required", "decline_code is required when outcome is failed"
            )
        return self


class MessageSentEvent(_Event):
    type: Literal["message_sent"]
    message_id: Id
    channel: Channel
    template: Annotated[str, Field(min_length=1, max_length=200)]


class MessageOpenedEvent(_Event):
    type: Literal["message_opened"]
    message_id: Id


class MessageClickedEvent(_Event):
    type: Literal["message_clicked"]
    message_id: Id


class PaymentMethodUpdatedEvent(Strict):
    """Extension of contract v1: the customer's card or bank details changed (a billing
    system's card-update event). Names the customer, the invoice, or both; a later
    recommendation for that customer (or invoice) treats an ``after_update`` decline
    whose first attempt came before ``occurred_at`` as updated (docs/api.md)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("customer_id", "invoice_id")
            ]
        },
    )

    type: Literal["payment_method_updated"]
    event_id: Id
    occurred_at: Timestamp
    customer_id: Id | None = None
    invoice_id: Id | None = None
    decision_id: Id | None = None

    @model_validator(mode="after")
    def _names_whose(self) -> PaymentMethodUpdatedEvent:
        if self.customer_id is None and self.invoice_id is None:
            raise PydanticCustomError(
                "customer_or_invoice_required", "customer_id or invoice_id is required"
            )
        return self


OutcomeEvent = Annotated[
    AttemptEvent
    | MessageSentEvent
    | MessageOpenedEvent
    | MessageClickedEvent
    | PaymentMethodUpdatedEvent,
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[str, ...] = (
    "attempt",
    "message_sent",
    "message_opened",
    "message_clicked",
    "payment_method_updated",
)


class OutcomesRequest(Strict):
    events: Annotated[list[OutcomeEvent], Field(min_length=1)]


class OutcomesResponse(BaseModel):
    accepted: int = Field(description="events stored by this call")
    duplicates: int = Field(description="events whose event_id was already stored (or repeated)")


class ModelInfo(BaseModel):
    name: str
    version: str
    fallback: bool
    source: str | None
    loaded_at: datetime
    training_data: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    last_reload_error: str | None = None


class Health(BaseModel):
    """Liveness, and which part is down as last seen (never waits for the store)."""

    status: Literal["ok"]
    store: Literal["ok", "unreachable"] = "ok"
    decider: Literal["model", "fallback"] = "model"
    decisions_pending: int = 0


class Readiness(BaseModel):
    ready: bool
    model_loaded: bool
    fallback: bool
    model_version: str
    store_reachable: bool
    down: list[Literal["store"]] = Field(default_factory=list)
    decisions_pending: int = 0

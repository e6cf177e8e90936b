"""Request and response models of API contract v1 (../shared/spec/api-contract.md).

Strict on purpose: unknown fields, unknown enum values, naive or unparsable timestamps,
floats or strings where integers belong, and non-positive amounts are refused with 422
instead of being guessed at. Field names are the contract's.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

import pycountry
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
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

Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
Code = Annotated[str, Field(min_length=1, max_length=100)]
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


TimeZone = Annotated[str, AfterValidator(_check_timezone)]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$"), AfterValidator(_check_country)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$"), AfterValidator(_check_currency)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PreviousAttempt(Strict):
    """An earlier attempt on the same charge. ``initiated_by`` (default ``merchant``):
    Visa counts customer-initiated attempts apart from the merchant's reattempts."""

    attempted_at: AwareDatetime
    decline_code: Code | None = None
    merchant_advice_code: MerchantAdviceCode | None = None
    initiated_by: Literal["merchant", "customer"] = "merchant"


class Customer(Strict):
    """Optional per field: what is missing comes from what the service knows, else defaults."""

    country: Country | None = None
    timezone: TimeZone | None = None
    signup_at: AwareDatetime | None = None
    sms_opt_in: StrictBool | None = None
    plan: Annotated[str, Field(max_length=200)] | None = None


class Constraints(Strict):
    """Defaults: max_retries 4, window_days 14, max_messages 3, channels email and sms."""

    max_retries: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    window_days: Annotated[StrictInt, Field(ge=1, le=90)] | None = None
    max_messages: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    channels: Annotated[list[Channel], Field(max_length=2)] | None = None


class RecommendationRequest(Strict):
    invoice_id: Id
    customer_id: Id
    amount_minor: Annotated[StrictInt, Field(gt=0)]
    currency: Currency
    payment_method: PaymentMethod
    card_brand: CardBrand | None = None
    processor: Processor
    decline_code: Code
    merchant_advice_code: MerchantAdviceCode | None = None
    failed_at: AwareDatetime
    previous_attempts: Annotated[list[PreviousAttempt], Field(max_length=100)] = []
    customer: Customer | None = None
    constraints: Constraints | None = None

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


class BatchRequest(Strict):
    """Items are validated one by one, so one bad item does not fail the others."""

    items: Annotated[list[RecommendationRequest], Field(min_length=1)]


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
    occurred_at: AwareDatetime
    decision_id: Id | None = None


class AttemptEvent(_Event):
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


OutcomeEvent = Annotated[
    AttemptEvent | MessageSentEvent | MessageOpenedEvent | MessageClickedEvent,
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[str, ...] = ("attempt", "message_sent", "message_opened", "message_clicked")


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
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool
    model_loaded: bool
    fallback: bool
    model_version: str
    store_reachable: bool

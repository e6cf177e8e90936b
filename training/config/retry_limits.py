"""Network and scheme retry limits: configuration with documented defaults and sources.

Networks change these numbers, so they live in ``params.yaml`` (section ``retry_rules``)
rather than in code. Each field's description names where its default comes from; where
a default is this product's own conservative choice rather than a network rule, the
description says so.
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

VISA_SOURCE = (
    "Visa Rules, excessive reattempts (decline categories 1-4, April 2021 / April 2022); "
    "https://www.payvision.com/scheme-updates/visa-new-fees-for-declined-transactions-reattempts/"
)
MASTERCARD_SOURCE = (
    "Mastercard Transaction Processing Excellence: merchant advice codes and excessive "
    "retries; https://developers.tabapay.com/docs/excessive-retry-rules"
)
MAC_SOURCE = (
    "Mastercard merchant advice codes; "
    "https://developer.paypal.com/braintree/docs/reference/general/merchant-responses/merchant-advice-codes"
)
ACH_SOURCE = (
    "Nacha Operating Rules 2.12.4 (reinitiation of returned entries: R01/R09 at most two "
    "times, within 180 days); https://docs.adyen.com/risk-management/chargeback-guidelines/ach-chargebacks"
)
SEPA_SOURCE = (
    "SEPA SDD rulebook sets no re-presentation count; two rescue attempts for AM04/MS03 "
    "as in https://docs.adyen.com/online-payments/auto-rescue/sepa"
)
BACS_SOURCE = (
    "Bacs Service User's Guide and Rules to the Direct Debit Scheme: re-present ARUDD 0 for "
    "one month from the original processing day; https://ptx-natwest.readme.io/docs/arudd-aop"
)
PRODUCT_SOURCE = "smartretry default (product choice, not a network rule); docs/declines.md"


class UpdateRequests(NamedTuple):
    """Which message templates ask the customer for a new payment method, and how long
    after the first of them an update becomes plausible. The rules engine, the policy's
    search and the dunning-state features all read these two from :class:`RetryLimits`,
    so a change in ``params.yaml`` reaches every one of them."""

    templates: tuple[str, ...]
    plausible_after_hours: float


class RetryLimits(BaseModel):
    """Every limit the rules engine enforces. Counts include the failed charge itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    visa_max_reattempts_30d: int = Field(
        15,
        ge=0,
        description="Visa: at most this many reattempts of a declined card (categories 2-4) "
        "in any rolling 30 days; category 1 never. Source: " + VISA_SOURCE,
    )
    mastercard_max_attempts_30d: int = Field(
        35,
        ge=1,
        description="Mastercard excessive retries: at most this many attempts on one card in "
        "any rolling 30 days. Source: " + MASTERCARD_SOURCE,
    )
    mastercard_max_attempts_24h: int = Field(
        10,
        ge=1,
        description="Mastercard excessive retries: at most this many attempts on one card in "
        "any rolling 24 hours. Source: " + MASTERCARD_SOURCE,
    )
    other_card_max_attempts_30d: int = Field(
        16,
        ge=1,
        description="Amex, Discover and other brands publish no cap; Visa's (1 + 15 "
        "reattempts in 30 days) is applied. Source: " + PRODUCT_SOURCE,
    )
    mac02_wait_hours: float = Field(
        72.0,
        ge=0,
        description="MAC 02 ('cannot approve at this time, try again later') names no wait; "
        "wait this long. Source: https://docs.solidgate.com/payments/payments-insights/merchant-advice-codes/",
    )
    ach_max_representments: int = Field(
        2,
        ge=0,
        description="ACH: an entry returned R01/R09 may be reinitiated at most this many "
        "times (applied to every ACH return). Source: " + ACH_SOURCE,
    )
    ach_reinitiation_window_days: int = Field(
        180,
        ge=1,
        description="ACH: reinitiation only within this many days of the original entry. "
        "Source: " + ACH_SOURCE,
    )
    sepa_max_representments: int = Field(
        2,
        ge=0,
        description="SEPA Direct Debit: at most this many re-presentations of a returned "
        "collection. Source: " + SEPA_SOURCE,
    )
    bacs_max_representments: int = Field(
        2,
        ge=0,
        description="Bacs Direct Debit: at most this many re-presentations (the scheme sets "
        "no count; product default). Source: " + PRODUCT_SOURCE,
    )
    bacs_representment_window_days: int = Field(
        30,
        ge=1,
        description="Bacs: re-present only within this many days of the original "
        "presentation. Source: " + BACS_SOURCE,
    )
    min_spacing_hours: float = Field(
        24.0,
        ge=0,
        description="Minimum time between two attempts of one charge (issuers decline "
        "bursts). Source: " + PRODUCT_SOURCE,
    )
    update_plausible_after_hours: float = Field(
        24.0,
        ge=0,
        description="For after_update declines, a retry is allowed this long after an "
        "update-request message was sent. Source: " + PRODUCT_SOURCE,
    )
    update_message_templates: tuple[str, ...] = Field(
        ("update_payment_method",),
        min_length=1,
        description="Message templates that ask the customer to update the payment method.",
    )
    unknown_max_retries: int = Field(
        1,
        ge=0,
        description="Unknown or missing decline code: at most this many retries. "
        "Source: " + PRODUCT_SOURCE,
    )
    unknown_min_wait_hours: float = Field(
        72.0,
        ge=0,
        description="Unknown or missing decline code: first retry no sooner than this. "
        "Source: " + PRODUCT_SOURCE,
    )

    @property
    def update_requests(self) -> UpdateRequests:
        return UpdateRequests(self.update_message_templates, self.update_plausible_after_hours)

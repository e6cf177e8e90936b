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
    "Visa Core Rules, excessive reattempts: category 1 never, categories 2-4 at most 20 "
    "reattempts in 30 days from 2025-05-25 (15 from April 2021 to May 2025), counted per "
    "credential (token and PAN apart), customer- and merchant-initiated apart; checked "
    "2026-12-05 in https://docs.cielo.com.br/ecommerce-cielo-en/changelog/new-limit-for-visa-retries-starting-may-25-2025, "
    "https://developers.tabapay.com/docs/excessive-retry-rules and "
    "https://history.paypal.com/us/brc/article/avoid-excessive-retries-penalties"
)
MASTERCARD_SOURCE = (
    "Mastercard Transaction Processing Excellence (since October 2022): at most 10 declined "
    "attempts on one card in 24 hours and 35 on the same card, merchant and amount in 30 "
    "days; MAC 03/21 never; checked 2026-12-05 in "
    "https://developers.tabapay.com/docs/excessive-retry-rules (Mastercard's own "
    "documents are not public)"
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
        20,
        ge=0,
        description="Visa: at most this many merchant-initiated reattempts of a declined "
        "card (categories 2-4) in any rolling 30 days (customer-initiated attempts are "
        "counted apart and not against it); category 1 never. Source: " + VISA_SOURCE,
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
        description="Amex, Discover and other brands publish no cap; Visa's former (1 + 15 "
        "reattempts in 30 days) is kept as a conservative product cap. Source: " + PRODUCT_SOURCE,
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

    def applicable(self, payment_method: str, card_brand: str | None) -> list[str]:
        """The names of the caps and windows that bound retries of this payment method
        (and card brand), then the product-wide ones, for explaining a decision."""
        by_scheme = {
            "sepa_debit": ["sepa_max_representments"],
            "bacs_debit": ["bacs_max_representments", "bacs_representment_window_days"],
            "ach_debit": ["ach_max_representments", "ach_reinitiation_window_days"],
        }
        by_brand = {
            "visa": ["visa_max_reattempts_30d"],
            "mastercard": [
                "mastercard_max_attempts_30d",
                "mastercard_max_attempts_24h",
                "mac02_wait_hours",
            ],
        }
        if payment_method == "card":
            names = by_brand.get(card_brand or "", ["other_card_max_attempts_30d"])
        else:
            names = by_scheme.get(payment_method, [])
        return [*names, "min_spacing_hours", "unknown_max_retries", "unknown_min_wait_hours"]

    @property
    def update_requests(self) -> UpdateRequests:
        return UpdateRequests(self.update_message_templates, self.update_plausible_after_hours)

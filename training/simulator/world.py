"""The simulated world's parameters: who the customers are and how they behave.

Everything here is the *world*, not the product: the training pipeline never reads it.
It is saved next to the ground truth (``world.json``) so any schedule can be scored
exactly later. Effects are on the logit scale unless said otherwise.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CountryProfile(Frozen):
    """Where customers live and how they pay there."""

    share: float
    currency: str
    timezones: tuple[str, ...]
    # payment_method -> share of invoices
    methods: dict[str, float]
    # pay cycle -> share of customers
    pay_cycles: dict[str, float]
    # typical invoice amount in the currency's minor unit (median)
    amount_median_minor: int


COUNTRIES: dict[str, CountryProfile] = {
    "US": CountryProfile(
        share=0.24,
        currency="USD",
        timezones=("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"),
        methods={"card": 0.88, "ach_debit": 0.12},
        pay_cycles={
            "biweekly_friday": 0.40,
            "weekly_friday": 0.12,
            "semi_monthly": 0.20,
            "monthly_first": 0.10,
            "last_business_day": 0.06,
            "irregular": 0.12,
        },
        amount_median_minor=2900,
    ),
    "GB": CountryProfile(
        share=0.14,
        currency="GBP",
        timezones=("Europe/London",),
        methods={"card": 0.7, "bacs_debit": 0.3},
        pay_cycles={
            "last_business_day": 0.55,
            "monthly_first": 0.10,
            "weekly_friday": 0.10,
            "biweekly_friday": 0.08,
            "semi_monthly": 0.02,
            "irregular": 0.15,
        },
        amount_median_minor=2400,
    ),
    "NL": CountryProfile(
        share=0.10,
        currency="EUR",
        timezones=("Europe/Amsterdam",),
        methods={"card": 0.45, "sepa_debit": 0.55},
        pay_cycles={
            "last_business_day": 0.45,
            "monthly_first": 0.25,
            "weekly_friday": 0.05,
            "semi_monthly": 0.05,
            "biweekly_friday": 0.05,
            "irregular": 0.15,
        },
        amount_median_minor=2500,
    ),
    "DE": CountryProfile(
        share=0.14,
        currency="EUR",
        timezones=("Europe/Berlin",),
        methods={"card": 0.4, "sepa_debit": 0.6},
        pay_cycles={
            "last_business_day": 0.55,
            "monthly_first": 0.20,
            "semi_monthly": 0.05,
            "biweekly_friday": 0.05,
            "weekly_friday": 0.02,
            "irregular": 0.13,
        },
        amount_median_minor=2500,
    ),
    "FR": CountryProfile(
        share=0.08,
        currency="EUR",
        timezones=("Europe/Paris",),
        methods={"card": 0.6, "sepa_debit": 0.4},
        pay_cycles={
            "last_business_day": 0.50,
            "monthly_first": 0.25,
            "semi_monthly": 0.05,
            "biweekly_friday": 0.03,
            "weekly_friday": 0.02,
            "irregular": 0.15,
        },
        amount_median_minor=2300,
    ),
    "CA": CountryProfile(
        share=0.07,
        currency="CAD",
        timezones=("America/Toronto", "America/Vancouver"),
        methods={"card": 1.0},
        pay_cycles={
            "biweekly_friday": 0.45,
            "semi_monthly": 0.20,
            "weekly_friday": 0.10,
            "monthly_first": 0.10,
            "last_business_day": 0.03,
            "irregular": 0.12,
        },
        amount_median_minor=3500,
    ),
    "AU": CountryProfile(
        share=0.07,
        currency="AUD",
        timezones=("Australia/Sydney", "Australia/Perth"),
        methods={"card": 1.0},
        pay_cycles={
            "biweekly_friday": 0.35,
            "weekly_friday": 0.25,
            "monthly_first": 0.15,
            "last_business_day": 0.10,
            "semi_monthly": 0.03,
            "irregular": 0.12,
        },
        amount_median_minor=3900,
    ),
    "IN": CountryProfile(
        share=0.08,
        currency="INR",
        timezones=("Asia/Kolkata",),
        methods={"card": 1.0},
        pay_cycles={
            "monthly_first": 0.55,
            "last_business_day": 0.25,
            "semi_monthly": 0.02,
            "weekly_friday": 0.02,
            "biweekly_friday": 0.01,
            "irregular": 0.15,
        },
        amount_median_minor=49900,
    ),
    "BR": CountryProfile(
        share=0.05,
        currency="BRL",
        timezones=("America/Sao_Paulo",),
        methods={"card": 1.0},
        pay_cycles={
            "semi_monthly": 0.40,
            "monthly_first": 0.30,
            "last_business_day": 0.10,
            "weekly_friday": 0.03,
            "biweekly_friday": 0.02,
            "irregular": 0.15,
        },
        amount_median_minor=4990,
    ),
    "JP": CountryProfile(
        share=0.03,
        currency="JPY",
        timezones=("Asia/Tokyo",),
        methods={"card": 1.0},
        pay_cycles={
            "last_business_day": 0.35,
            "monthly_first": 0.35,
            "semi_monthly": 0.05,
            "weekly_friday": 0.02,
            "biweekly_friday": 0.03,
            "irregular": 0.20,
        },
        amount_median_minor=1500,
    ),
}

PAY_CYCLES = (
    "monthly_first",
    "last_business_day",
    "semi_monthly",
    "biweekly_friday",
    "weekly_friday",
    "irregular",
)

TEMPLATES = (
    "friendly_reminder",
    "update_payment_method",
    "payment_link",
    "payment_plan_offer",
    "final_notice",
)

# how well a template fits a family of decline reasons (logit effect on response)
TEMPLATE_FIT: dict[str, dict[str, float]] = {
    "funds": {
        "friendly_reminder": 0.0,
        "update_payment_method": -0.9,
        "payment_link": 0.5,
        "payment_plan_offer": 0.2,
        "final_notice": -0.2,
    },
    "card": {
        "friendly_reminder": -0.4,
        "update_payment_method": 1.0,
        "payment_link": 0.3,
        "payment_plan_offer": -0.9,
        "final_notice": -0.3,
    },
    "issuer": {
        "friendly_reminder": 0.2,
        "update_payment_method": 0.0,
        "payment_link": 0.35,
        "payment_plan_offer": -0.6,
        "final_notice": -0.3,
    },
    "auth": {
        "friendly_reminder": -0.2,
        "update_payment_method": 0.3,
        "payment_link": 0.9,
        "payment_plan_offer": -0.8,
        "final_notice": -0.2,
    },
    "mandate": {
        "friendly_reminder": -0.2,
        "update_payment_method": 0.7,
        "payment_link": 0.5,
        "payment_plan_offer": -0.6,
        "final_notice": 0.0,
    },
}

# true decline reason -> (family for template fit, how a retry can succeed)
#   retry: "funds" (pay cycle), "soft" (time-varying issuer), "update" (only once the
#   card was updated), "never" (hard decline)
CATEGORY_BEHAVIOUR: dict[str, tuple[str, str]] = {
    "insufficient_funds": ("funds", "funds"),
    "limit_exceeded": ("funds", "funds"),
    "expired_card": ("card", "update"),
    "card_invalid": ("card", "update"),
    "lost_or_stolen": ("card", "never"),
    "fraud_suspected": ("card", "never"),
    "account_closed": ("card", "never"),
    "dispute_or_revoked": ("mandate", "never"),
    "not_permitted": ("card", "never"),
    "authentication_required": ("auth", "soft"),
    "do_not_honor": ("issuer", "soft"),
    "issuer_unavailable": ("issuer", "soft"),
    "processing_error": ("issuer", "soft"),
    "duplicate": ("issuer", "soft"),
    "other": ("issuer", "soft"),
}


class RetryEffects(Frozen):
    # base logit of a retry's success per true reason (for "update" reasons: once updated)
    base: dict[str, float] = {
        "insufficient_funds": -2.3,
        "limit_exceeded": -2.0,
        "expired_card": 1.6,
        "card_invalid": 1.2,
        "authentication_required": -3.2,
        "do_not_honor": -1.5,
        "issuer_unavailable": 0.3,
        "processing_error": 0.5,
        "duplicate": -2.5,
        "other": -1.6,
    }
    payday_boost: float = Field(2.6, description="extra logit right after payday")
    payday_decay_days: float = Field(2.5, description="e-folding time of the payday boost")
    irregular_funds: float = Field(0.6, description="flat funds effect without a pay cycle")
    morning_peak_hour: float = 8.0
    morning_boost: float = 0.45
    evening_peak_hour: float = 18.0
    evening_boost: float = 0.2
    night_penalty: float = Field(0.45, description="local 00:00-05:00")
    weekend_debit_penalty: float = 0.35
    decay_per_failed_retry: float = 0.4
    spacing_penalty: float = Field(1.3, description="logit lost by a retry right after an attempt")
    spacing_scale_hours: float = 10.0
    loyal_bonus: float = 0.45
    repeat_failer_penalty: float = 0.45
    fragility_penalty: float = 1.0
    mac02_wait_hours: float = 72.0
    mac02_factor: float = Field(0.25, description="probability factor before the MAC 02 wait")
    clearing_reasons: tuple[str, ...] = Field(
        (), description="reasons whose cause clears within hours (an outage, a velocity hold)"
    )
    clearing_boost: float = Field(
        0.0, description="extra logit of a retry right after the failure, for clearing reasons"
    )
    clearing_hours: float = Field(8.0, description="e-folding time of the clearing boost")


class MessageEffects(Frozen):
    base: float = -2.1
    engagement_sd: float = 0.6
    sms_bonus: float = 0.25
    sms_preference_sd: float = 0.5
    active_hour_boost: float = 0.9
    active_hour_width: float = 3.0
    quiet_penalty_email: float = 0.9
    quiet_penalty_sms: float = 1.8
    fatigue_per_message: float = 0.45
    final_notice_late_bonus: float = Field(0.7, description="final notice sent after day 7")
    plan_offer_repeat_bonus: float = 0.9
    plan_offer_large_amount_bonus: float = 0.5
    loyal_bonus: float = 0.5
    repeat_failer_penalty: float = 0.3
    # probability that a responding customer pays through the link
    pay_card_problem: float = 0.85
    pay_issuer: float = 0.75
    pay_funds_base: float = -0.4
    open_rate_email: float = 0.45
    open_rate_sms: float = 0.92
    mean_click_delay_hours: float = 1.5
    active_hour_shift_by_country: dict[str, float] = Field(
        {}, description="hours added to the active peak of every customer of a country"
    )
    disengage_per_message: float = Field(
        0.0,
        description="give-up: each earlier message multiplies every later event's chance "
        "(click or retry success) by 1 - this",
    )


class CustomerEffects(Frozen):
    tenure_years_max: float = 12.0
    tenure_scale_years: float = Field(3.0, description="mean tenure (exponential) in years")
    pay_cycle_shares: dict[str, float] | None = Field(
        None, description="pay cycle shares for every country (None: each country's own)"
    )
    sms_opt_in_share: float = 0.45
    fragility_alpha: float = 1.3
    fragility_beta: float = 3.0
    update_hazard_per_day: dict[str, float] = {"expired_card": 0.07, "card_invalid": 0.025}
    self_pay_per_day: float = Field(0.006, description="daily chance a customer pays unprompted")
    self_pay_payday_factor: float = 3.0


class WorldConfig(Frozen):
    """All parameters of a simulated world. ``world.json`` is this, serialized."""

    name: str = "default"
    retry: RetryEffects = RetryEffects()
    message: MessageEffects = MessageEffects()
    customer: CustomerEffects = CustomerEffects()
    quiet_start_hour: int = 21
    quiet_end_hour: int = 8
    invoices_per_customer: float = Field(2.5, description="mean failed invoices per customer")

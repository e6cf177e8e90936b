"""Knobs of the rule-based schedules: the fixed schedule most billing systems ship and the
rules baseline (also the service's fallback). Pure configuration; the schedules are built
in :mod:`training.policy.baselines`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["email", "sms"]


class BaselineConfig(BaseModel):
    """Knobs of the rule-based schedules (``params.yaml`` section ``baselines``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fixed_retry_days: tuple[float, ...] = Field(
        (3, 5, 7), description="fixed schedule: retries this many days after the failure"
    )
    fixed_message_days: tuple[float, ...] = Field(
        (0, 3, 7), description="fixed schedule: messages this many days after the failure"
    )
    fixed_message_template: str = "friendly_reminder"
    fixed_message_channel: Channel = "email"
    soft_retry_days: tuple[float, ...] = Field(
        (1, 3, 6, 10), description="rules: other soft declines, retries this many days after"
    )
    payday_month_days: tuple[int, ...] = Field(
        (1, 15), description="rules: paydays by day of month (local)"
    )
    payday_last_business_day: bool = Field(True, description="rules: last Mon-Fri of a month")
    payday_weekdays: tuple[int, ...] = Field((4,), description="rules: weekly paydays, Monday=0")
    payday_retry_hour: int = Field(
        6, ge=0, le=23, description="rules: local hour of a retry the morning after payday"
    )
    update_retry_days: tuple[float, ...] = Field(
        (0, 2, 5),
        description="rules, after_update: retries this many days after an update is plausible",
    )
    rules_message_days: tuple[float, ...] = Field(
        (0, 3, 7), description="rules: messages this many days after the failure"
    )
    rules_message_channels: tuple[Channel, ...] = Field(
        ("email", "sms", "email"),
        min_length=1,
        description="rules: channel of the 1st, 2nd, ... message (SMS only with opt-in)",
    )
    payment_link_template: str = "payment_link"
    card_problem_categories: tuple[str, ...] = Field(
        (
            "expired_card",
            "card_invalid",
            "lost_or_stolen",
            "fraud_suspected",
            "account_closed",
            "dispute_or_revoked",
            "not_permitted",
        ),
        description="rules: categories answered with the update-payment-method template",
    )

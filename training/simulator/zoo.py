"""The world zoo: structurally different simulated worlds, each with its exact truth.

smartretry is judged on histories other worlds produced, so one set of product defaults
must hold on all of them. Each world changes a *mechanism* of the default world, not a
seed: how customers are paid, how fast a decline clears, when customers read messages,
whether messages wear them out, how the team logged its own dunning, how much history a
customer has. The product never reads this module (``lint-imports`` forbids it); only the
evaluation (``smartretry zoo``) and the CLI (``smartretry simulate --world``) do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from training.simulator.logging_policy import LoggingPolicy
from training.simulator.world import CustomerEffects, MessageEffects, RetryEffects, WorldConfig


@dataclass(frozen=True)
class ZooWorld:
    """A named world: its parameters, the team's logging policy, what is different."""

    name: str
    description: str
    world: WorldConfig
    policy: LoggingPolicy = field(default_factory=LoggingPolicy)


def _world(name: str, **changes) -> WorldConfig:
    return WorldConfig(name=name, **changes)


WORLDS: dict[str, ZooWorld] = {
    world.name: world
    for world in (
        ZooWorld("default", "the reference world (docs/simulator.md)", WorldConfig()),
        ZooWorld(
            "paydays",
            "pay cycles dominated by semi-monthly and biweekly pay in every country",
            _world(
                "paydays",
                customer=CustomerEffects(
                    pay_cycle_shares={
                        "semi_monthly": 0.45,
                        "biweekly_friday": 0.40,
                        "weekly_friday": 0.05,
                        "irregular": 0.10,
                    }
                ),
            ),
        ),
        ZooWorld(
            "fast_clearing",
            "technical and issuer-unavailable declines clear within hours: a retry a few "
            "hours after the failure does far better than one a day later",
            _world(
                "fast_clearing",
                retry=RetryEffects(
                    clearing_reasons=(
                        "issuer_unavailable",
                        "processing_error",
                        "do_not_honor",
                        "other",
                    ),
                    clearing_boost=3.5,
                    clearing_hours=8.0,
                ),
            ),
        ),
        ZooWorld(
            "night_owls",
            "customers read messages at other hours, by country (late evening in the "
            "Americas, early morning in Europe, midday in Asia-Pacific)",
            _world(
                "night_owls",
                message=MessageEffects(
                    active_hour_shift_by_country={
                        "US": 3.0,
                        "CA": 3.0,
                        "BR": 3.0,
                        "GB": -6.0,
                        "DE": -6.0,
                        "FR": -6.0,
                        "NL": -6.0,
                        "IN": 5.0,
                        "JP": 5.0,
                        "AU": 5.0,
                    },
                    active_hour_boost=1.4,
                ),
            ),
        ),
        ZooWorld(
            "fatigue",
            "strong fatigue and give-up: every message lowers the chance of every later "
            "click and retry, so fewer messages recover more",
            _world(
                "fatigue",
                message=MessageEffects(fatigue_per_message=1.1, disengage_per_message=0.2),
            ),
        ),
        ZooWorld(
            "strict_logging",
            "a mostly deterministic team: the legacy plan always, 10% of its retries and "
            "messages delayed by 0-47 random hours, propensities per decision",
            WorldConfig(name="strict_logging"),
            LoggingPolicy(explore_rate=0.1, explore_mode="random_hours"),
        ),
        ZooWorld(
            "other_team",
            "another team's own dunning: retries 1, 4 and 9 days after the failure, a "
            "payment link at once, an update request by SMS after 2 days and a final "
            "notice after 7; 30% of its retries and messages delayed by 0-71 random "
            "hours, propensities per decision",
            WorldConfig(name="other_team"),
            LoggingPolicy(
                explore_rate=0.3,
                explore_mode="random_hours",
                explore_max_delay_hours=71,
                retry_plans={"legacy_1_4_9": (24, 96, 216)},
                message_plans={
                    "legacy_link_update_notice": (
                        (0, "payment_link", "email"),
                        (48, "update_payment_method", "sms"),
                        (168, "final_notice", "email"),
                    )
                },
                legacy_retry_plan="legacy_1_4_9",
                legacy_message_plan="legacy_link_update_notice",
            ),
        ),
        ZooWorld(
            "young_merchant",
            "a young merchant: customers of under two years' tenure with about one failed "
            "invoice each, so little history per customer",
            _world(
                "young_merchant",
                customer=CustomerEffects(tenure_scale_years=0.5, tenure_years_max=2.0),
                invoices_per_customer=1.15,
            ),
        ),
    )
}


def zoo_world(name: str) -> ZooWorld:
    """The world called ``name``; a ``KeyError`` naming the worlds there are otherwise."""
    try:
        return WORLDS[name]
    except KeyError:
        raise KeyError(f"unknown world {name!r}; expected one of {', '.join(WORLDS)}") from None

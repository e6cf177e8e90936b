"""Prometheus metrics with one registry per app (several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "smartretry_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "smartretry_http_request_duration_seconds",
            "Time from request to response, by route template, method and status",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "smartretry_decisions",
            "Recommendations answered, by decline category and retryable",
            ["category", "retryable"],
            registry=r,
        )
        self.fallback = Counter(
            "smartretry_fallback_decisions",
            "Recommendations answered by the rules fallback (no model loaded)",
            registry=r,
        )
        self.item_errors = Counter(
            "smartretry_batch_item_errors",
            "Batch items refused, by error code",
            ["code"],
            registry=r,
        )
        self.outcomes = Counter(
            "smartretry_outcome_events",
            "Outcome events received, by result (accepted, duplicate)",
            ["result"],
            registry=r,
        )
        self.webhook_events = Counter(
            "smartretry_webhook_events",
            "Billing-system webhook events, by source and result (decided, outcome, "
            "card_update, ignored, duplicate, rejected)",
            ["source", "result"],
            registry=r,
        )
        self.reloads = Counter(
            "smartretry_model_reloads",
            "Model reload attempts, by result (ok, failed)",
            ["result"],
            registry=r,
        )
        self.decisions_pending = Gauge(
            "smartretry_decisions_pending",
            "Decisions answered and queued for the store, not yet written",
            registry=r,
        )
        self.decisions_dropped = Counter(
            "smartretry_decisions_dropped",
            "Decisions answered but never stored (the store failed on every attempt)",
            registry=r,
        )
        self.model_fallback = Gauge(
            "smartretry_model_fallback",
            "1 when the rules fallback answers (no model loaded), else 0",
            registry=r,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def observe_decisions(self, rows: Iterable[tuple[str, str, bool]]) -> None:
        """``(category, retryable, fallback)`` per decision."""
        for category, retryable, fallback in rows:
            self.decisions.labels(category, retryable).inc()
            if fallback:
                self.fallback.inc()

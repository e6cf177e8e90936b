"""Fixtures of the analytics tests (the builder lives in ``analytics_history``)."""

from __future__ import annotations

import pytest
from analytics_history import make_history

from training.contract.history import History


@pytest.fixture
def four_invoices() -> History:
    """in_1 recovered by the 2nd retry on day 2; in_2 paid by the customer on day 20, after
    the 14-day window (not recovered); in_3 paid by the customer on day 3; in_4 recovered by
    its first retry on day 1. Local times: Amsterdam is UTC+1, New York UTC-5 (January)."""
    return make_history(
        customers=[("c1", "NL", "Europe/Amsterdam"), ("c2", "US", "America/New_York")],
        invoices=[
            ("in_1", "c1", 1000, "EUR", "card", "stripe", 0),
            ("in_2", "c2", 3000, "USD", "card", "stripe", 0),
            ("in_3", "c2", 2000, "EUR", "sepa_debit", "sepa", 0),
            ("in_4", "c2", 500, "JPY", "card", "adyen", 0),
        ],
        attempts=[
            ("in_1", 0, "merchant", "failed", "insufficient_funds"),
            ("in_1", 1, "merchant", "failed", "insufficient_funds"),
            ("in_1", 2, "merchant", "succeeded", None),
            ("in_2", 0, "merchant", "failed", "expired_card"),
            ("in_2", 1, "merchant", "failed", "expired_card"),
            ("in_2", 20, "customer", "succeeded", None),
            ("in_3", 0, "merchant", "failed", "AM04"),
            ("in_3", 3, "customer", "succeeded", None),
            ("in_4", 0, "merchant", "failed", "2"),
            ("in_4", 1, "merchant", "succeeded", None),
        ],
        messages=[
            ("in_3", 1, "email", "friendly_reminder", True),
            ("in_3", 2, "email", "friendly_reminder", False),
            ("in_3", 5, "sms", "payment_link", True),
            ("in_2", 1, "email", "final_notice", False),
        ],
    )

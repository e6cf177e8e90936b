"""The webhook router with every sender's route registered on it."""

from __future__ import annotations

from serving.webhooks import adyen, lago, stripe
from serving.webhooks.common import webhooks

__all__ = ["adyen", "lago", "stripe", "webhooks"]

"""Local quiet hours: no dunning message is sent to a customer inside them.

One setting for every schedule smartretry makes (the learned policy, the fixed schedule,
the rules baseline and the service's fallback). It travels inside the decision artifact
with the policy (``params.yaml`` ``policy.quiet_hours``); the service may override it
(``SMARTRETRY_QUIET_START_HOUR`` / ``SMARTRETRY_QUIET_END_HOUR``, docs/serving.md).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QuietHours(BaseModel):
    """``[start_hour, end_hour)`` in the customer's local time; may wrap midnight; equal
    bounds mean no quiet hours."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_hour: int = Field(21, ge=0, le=23, description="local quiet hours start")
    end_hour: int = Field(8, ge=0, le=23, description="local quiet hours end")

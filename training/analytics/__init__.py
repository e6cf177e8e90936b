"""Recovery analytics over any history in the data contract (notebook 01 calls these).

Start from ``dunning_cycles(history, window_days)``: one row per invoice with its outcome;
the other functions take that frame (and the history where they need attempts or
messages) and return tidy tables, which the ``plot_*`` functions draw.
"""

from training.analytics.currency import to_major
from training.analytics.cycles import (
    WEEKDAYS,
    check_history,
    dunning_cycles,
    follow_up_attempts,
    latest_timestamp,
)
from training.analytics.hour_of_week import hour_of_week
from training.analytics.messages import message_outcomes, message_response, response_by_send_hour
from training.analytics.paths import project_path, project_root
from training.analytics.plots import (
    plot_hour_of_week,
    plot_message_grid,
    plot_recovery_by,
    plot_recovery_curves,
    plot_retry_success,
    plot_revenue,
    save_figure,
)
from training.analytics.rates import (
    DIMENSIONS,
    overview,
    proportion_interval,
    recovery_by,
    retry_success_by_number,
)
from training.analytics.revenue import revenue_at_risk
from training.analytics.survival import recovery_curves, recovery_milestones
from training.analytics.tables import readable, readable_grid

__all__ = [
    "DIMENSIONS",
    "WEEKDAYS",
    "check_history",
    "dunning_cycles",
    "follow_up_attempts",
    "hour_of_week",
    "latest_timestamp",
    "message_outcomes",
    "message_response",
    "overview",
    "plot_hour_of_week",
    "plot_message_grid",
    "plot_recovery_by",
    "plot_recovery_curves",
    "plot_retry_success",
    "plot_revenue",
    "project_path",
    "project_root",
    "proportion_interval",
    "readable",
    "readable_grid",
    "recovery_by",
    "recovery_curves",
    "recovery_milestones",
    "response_by_send_hour",
    "retry_success_by_number",
    "revenue_at_risk",
    "save_figure",
    "to_major",
]

"""The years a loaded model warms its customers' zones for (serving/artifact_decider.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from serving.artifact_decider import decision_years

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def test_a_replay_of_older_data_covers_its_last_year_to_the_year_after_now():
    metadata = {
        "training_data": {
            "train_period": "2024-01-01 .. 2025-04-02",
            "test_period": "2025-08-05 .. 2025-12-28",
            "source": "/data/2031-01-01/history",  # not a period: ignored
        }
    }
    assert decision_years(metadata, NOW) == (2025, 2027)


def test_without_periods_the_current_year_and_the_next():
    assert decision_years({}, NOW) == (2026, 2027)
    assert decision_years({"training_data": None}, NOW) == (2026, 2027)

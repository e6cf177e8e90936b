"""The numpy ``timeline_state`` against a plain pandas groupby version of the same
definitions, on random timelines with ties in time, several templates and candidates
anywhere."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config.retry_limits import RetryLimits
from training.core.localtime import to_ns
from training.features.dunning_state import (
    KIND_ORDER,
    STATE_FEATURES,
    timeline_state,
)

UPDATE = RetryLimits().update_requests
UPDATE_TEMPLATE = UPDATE.templates[0]
UPDATE_PLAUSIBLE_HOURS = UPDATE.plausible_after_hours


def _ref_hours(ts: pd.Series) -> np.ndarray:
    return to_ns(ts) / 3.6e12


def _ref_earlier_count(frame: pd.DataFrame, flag: np.ndarray, by: list[str]) -> np.ndarray:
    """Rows earlier in the (sorted) group with ``flag`` set."""
    counts = (
        pd.Series(flag.astype(np.int64), index=frame.index)
        .groupby([frame[c] for c in by], sort=False)
        .cumsum()
    )
    return counts.to_numpy() - flag.astype(np.int64)


def _ref_earlier_last(frame: pd.DataFrame, hours: np.ndarray, flag: np.ndarray) -> np.ndarray:
    """Time (hours) of the latest earlier row of the same key with ``flag`` (NaN if none)."""
    values = pd.Series(np.where(flag, hours, np.nan), index=frame.index)
    previous = values.groupby(frame["key"], sort=False).shift(1)
    return previous.groupby(frame["key"], sort=False).ffill().to_numpy()


def reference_timeline_state(timeline: pd.DataFrame) -> pd.DataFrame:
    """The straightforward pandas groupby version (the first implementation)."""
    order = timeline["kind"].map(KIND_ORDER).to_numpy()
    frame = timeline.assign(_order=order).sort_values(["key", "t", "_order"], kind="stable")
    hours = _ref_hours(frame["t"])
    kind = frame["kind"].to_numpy()
    original = kind == "original"
    attempt = original | (kind == "retry")
    message = kind == "message"
    update = message & (frame["template"].to_numpy() == UPDATE_TEMPLATE)

    start = pd.Series(np.where(original, hours, np.nan), index=frame.index)
    start = start.groupby(frame["key"], sort=False).transform("min").to_numpy()
    last_attempt = _ref_earlier_last(frame, hours, attempt)
    last_message = _ref_earlier_last(frame, hours, message)
    last_update = _ref_earlier_last(frame, hours, update)
    template_key = frame["template"].fillna("").to_numpy()
    state = pd.DataFrame(
        {
            "hours_since_failure": hours - start,
            "retries_before": _ref_earlier_count(frame, kind == "retry", ["key"]),
            "hours_since_last_attempt": hours - last_attempt,
            "messages_before": _ref_earlier_count(frame, message, ["key"]),
            "hours_since_last_message": hours - last_message,
            "update_requests_before": _ref_earlier_count(frame, update, ["key"]),
            "hours_since_update_request": hours - last_update,
            "same_template_before": np.where(
                message,
                _ref_earlier_count(frame.assign(_tpl=template_key), message, ["key", "_tpl"]),
                np.nan,
            ),
        },
        index=frame.index,
    )
    first_update = pd.Series(np.where(update, hours, np.nan), index=frame.index)
    first_update = first_update.groupby(frame["key"], sort=False).transform("min").to_numpy()
    state["card_update_likely"] = (hours - first_update >= UPDATE_PLAUSIBLE_HOURS).astype(float)
    candidate = frame["candidate"].to_numpy(dtype=bool)
    return state[candidate].reindex(timeline.index[timeline["candidate"].to_numpy(dtype=bool)])[
        list(STATE_FEATURES)
    ]


def _random_timeline(seed: int, keys: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for key in range(keys):
        n = int(rng.integers(1, 9))
        base = pd.Timestamp("2025-03-01", tz="UTC") + pd.Timedelta(hours=int(rng.integers(0, 500)))
        kinds = ["original", *rng.choice(["retry", "message"], size=n - 1)]
        for kind in kinds:
            hours = int(rng.integers(0, 6)) * 12  # coarse: many ties
            template = (
                rng.choice([UPDATE_TEMPLATE, "friendly_reminder", "final_notice"])
                if kind == "message"
                else None
            )
            rows.append(
                {
                    "key": f"k{key:03d}" if seed % 2 else key,
                    "event_id": f"e{key // 2}",
                    "t": base + pd.Timedelta(hours=hours),
                    "kind": kind,
                    "template": template,
                    "channel": "email" if kind == "message" else None,
                    "candidate": bool(rng.random() < 0.6),
                }
            )
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed)  # any row order
    frame.index = rng.permutation(len(frame)) * 3 + 7  # and any index
    return frame


@pytest.mark.parametrize("seed", range(6))
def test_numpy_state_equals_groupby_definition(seed):
    timeline = _random_timeline(seed, keys=40)
    got = timeline_state(timeline, UPDATE)
    want = reference_timeline_state(timeline)
    assert list(got.columns) == list(STATE_FEATURES)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_no_candidates_and_single_rows():
    timeline = _random_timeline(3, keys=5).assign(candidate=False)
    assert timeline_state(timeline, UPDATE).empty
    one = _random_timeline(4, keys=1).head(1).assign(candidate=True)
    pd.testing.assert_frame_equal(
        timeline_state(one, UPDATE), reference_timeline_state(one), check_dtype=False
    )


def test_update_requests_follow_the_configured_templates_and_delay():
    """Which templates count as update requests, and the delay before an update is
    plausible, come from the retry limits (never a constant of the feature module)."""
    timeline = _random_timeline(2, keys=30)
    default = timeline_state(timeline, UPDATE)
    renamed = timeline.assign(
        template=timeline["template"].replace({UPDATE_TEMPLATE: "new_card_please"})
    )
    limits = RetryLimits(update_message_templates=("new_card_please",))
    pd.testing.assert_frame_equal(timeline_state(renamed, limits.update_requests), default)
    assert timeline_state(renamed, UPDATE)["update_requests_before"].sum() == 0
    later = RetryLimits(update_plausible_after_hours=UPDATE_PLAUSIBLE_HOURS + 100)
    slower = timeline_state(timeline, later.update_requests)
    assert slower["card_update_likely"].sum() < default["card_update_likely"].sum()


def test_missing_and_empty_templates_count_as_one_template():
    """A message without a template and one with the empty template are the same
    template to ``same_template_before`` (as the reference fills missing with "")."""
    base = pd.Timestamp("2025-03-01", tz="UTC")
    kinds = ["original", "message", "message", "message", "retry", "message"]
    templates = [None, None, "", np.nan, None, "final_notice"]
    timeline = pd.DataFrame(
        {
            "key": 0,
            "event_id": "e0",
            "t": [base + pd.Timedelta(hours=6 * i) for i in range(len(kinds))],
            "kind": kinds,
            "template": np.array(templates, dtype=object),
            "channel": None,
            "candidate": True,
        }
    )
    got = timeline_state(timeline, UPDATE)
    pd.testing.assert_frame_equal(got, reference_timeline_state(timeline), check_dtype=False)
    assert got["same_template_before"].tolist()[1:4] == [0.0, 1.0, 2.0]

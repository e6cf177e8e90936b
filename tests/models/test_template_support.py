"""The hours after the failure each message template was logged at (template_support.py)."""

import numpy as np
import pandas as pd

from training.models.template_support import TemplateSupport

ROWS = pd.DataFrame(
    {
        "template": ["final_notice", "final_notice", "payment_link", "payment_link", "x"],
        "hours_since_failure": [121.0, 250.0, 1.0, 230.0, np.nan],
    }
)


def test_each_template_gets_the_range_of_its_rows():
    support = TemplateSupport.fit(ROWS)
    lower, upper = support.bounds(np.array(["payment_link", "final_notice"], dtype=object))
    assert lower.tolist() == [1.0, 121.0]
    assert upper.tolist() == [230.0, 250.0]


def test_a_template_without_rows_is_unbounded():
    support = TemplateSupport.fit(ROWS)  # "x" has no hours: no range
    lower, upper = support.bounds(np.array(["x", "never_logged"], dtype=object))
    assert np.isneginf(lower).all() and np.isposinf(upper).all()


def test_the_margin_widens_every_range_both_ways():
    lower, upper = TemplateSupport.fit(ROWS, 24.0).bounds(np.array(["final_notice"]))
    assert (lower[0], upper[0]) == (97.0, 274.0)


def test_the_lower_side_alone_leaves_later_hours_open():
    support = TemplateSupport.fit(ROWS, 24.0, sides="lower")
    lower, upper = support.bounds(np.array(["final_notice", "payment_link"], dtype=object))
    assert lower.tolist() == [97.0, -23.0]
    assert np.isposinf(upper).all()


def test_a_wide_band_gets_a_margin_scaled_to_its_width():
    # final_notice 121-250 h (width 129), payment_link 1-230 h (width 229); the margin is
    # the larger of 24 h and half the width
    support = TemplateSupport.fit(ROWS, 24.0, sides="lower", width_fraction=0.5)
    lower, _ = support.bounds(np.array(["final_notice", "payment_link"], dtype=object))
    assert lower.tolist() == [121.0 - 64.5, 1.0 - 114.5]


def test_a_narrow_band_keeps_the_floor():
    rows = pd.DataFrame({"template": ["t", "t"], "hours_since_failure": [48.0, 60.0]})
    lower, upper = TemplateSupport.fit(rows, 24.0, width_fraction=0.5).bounds(np.array(["t"]))
    assert (lower[0], upper[0]) == (24.0, 84.0)  # half the width, 6 h, is under the floor

"""Category columns encoded once per distinct label (matrix.py) equal the row-by-row
encoding, missing values and non-string columns included."""

from __future__ import annotations

import numpy as np

from training.models.calibrated import category_codes
from training.models.matrix import _by_labels
from training.models.pair_rates import PairRate


def test_labels_encoded_once_equal_every_row_encoded():
    rng = np.random.default_rng(3)
    labels = np.array(["sms", "email", None, np.nan, "fax", "01", "1", ""], dtype=object)
    values = labels[rng.integers(0, len(labels), 5000)]
    categories = ["email", "sms", "01", "1"]
    want = category_codes(values, categories)
    np.testing.assert_array_equal(_by_labels(lambda v: category_codes(v, categories), values), want)

    left = np.array(["a", "b", "c", None], dtype=object)[rng.integers(0, 4, 5000)]
    right = np.array(["x", "y", np.nan], dtype=object)[rng.integers(0, 3, 5000)]
    label = rng.integers(0, 2, 5000)
    rate = PairRate("rate", "l", "r").fit(left[:300], right[:300], label[:300])
    np.testing.assert_array_equal(_by_labels(rate.lookup, left, right), rate.lookup(left, right))


def test_columns_that_are_not_strings_are_encoded_as_they_are():
    calls = []

    def encode(values):
        calls.append(values)
        return category_codes(values, ["1", "2"])

    numbers = np.array([1, 2, 1.0, True] * 600, dtype=object)  # 1, 1.0 and True hash alike
    np.testing.assert_array_equal(_by_labels(encode, numbers), category_codes(numbers, ["1", "2"]))
    assert calls[0] is numbers

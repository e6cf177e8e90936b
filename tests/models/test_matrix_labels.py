"""Category columns encoded once per distinct label (matrix.py) equal the row-by-row
encoding, missing values and non-string columns included."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.models.calibrated import category_codes
from training.models.matrix import _by_labels, _row_codes
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


def test_pair_rates_from_label_tables_equal_each_row_looked_up():
    """EventMatrix looks a rate up once per pair of labels and gathers; the figures are
    those of looking every row up: counts, other floats, NaN, strings and missing."""
    from training.models.matrix import EventMatrix

    rng = np.random.default_rng(5)
    n_events, n_rows = 40, 3000
    category = np.array(["card", "funds", None, "fraud"], dtype=object)
    events = EventMatrix.from_columns(
        np.arange(n_events), {"cat": category[rng.integers(0, 4, n_events)]}
    )
    pos = rng.integers(0, n_events, n_rows)
    label = rng.integers(0, 2, n_rows)
    template = np.array(["ask", "remind", None, np.nan, "unseen"], dtype=object)
    per_row = {
        "count": rng.integers(0, 4, n_rows).astype(float),
        "big": rng.integers(0, 30, n_rows).astype(float),
        "frac": np.where(rng.random(n_rows) < 0.2, np.nan, rng.random(n_rows) * 3),
        "template": template[rng.integers(0, 5, n_rows)],
    }
    for right, bins in (("count", (0.5, 1.5)), ("big", (2.5, 9.5)), ("frac", (1.0,))):
        spec = PairRate("r", "cat", right, right_bins=bins)
        rate = spec.fit(events.column("cat")[pos][:500], per_row[right][:500], label[:500])
        got = events._rate_column(rate, pos, {right: per_row[right]})
        want = rate.lookup(events.column("cat")[pos], per_row[right])
        np.testing.assert_array_equal(got, want)
        again = events._rate_column(rate, pos[:7], {right: per_row[right][:7]})  # kept table
        np.testing.assert_array_equal(again, want[:7])
        other = EventMatrix.from_columns(np.arange(3), {"cat": category[[3, 0, 3]]})  # kept columns
        got = other._rate_column(rate, pos % 3, {right: per_row[right]})
        want = rate.lookup(other.column("cat")[pos % 3], per_row[right])
        np.testing.assert_array_equal(got, want)
        lone = EventMatrix.from_columns(np.arange(1), {"cat": category[[1]]})  # one event
        got = lone._rate_column(rate, np.zeros(n_rows, dtype=np.int64), {right: per_row[right]})
        want = rate.lookup(np.repeat(category[[1]], n_rows), per_row[right])
        np.testing.assert_array_equal(got, want)
    rate = PairRate("t", "template", "cat").fit(
        per_row["template"][:500], events.column("cat")[pos][:500], label[:500]
    )
    got = events._rate_column(rate, pos, {"template": per_row["template"]})
    np.testing.assert_array_equal(got, rate.lookup(per_row["template"], events.column("cat")[pos]))


def test_one_events_matrix_equals_its_row_in_a_matrix_of_many():
    """A lone request's event row is repeated as a view, not gathered: the same matrix."""
    from types import SimpleNamespace

    from training.models.matrix import EventMatrix

    rng = np.random.default_rng(9)
    columns = {"a": rng.random(5), "b": rng.random(5), "c": rng.random(5)}
    model = SimpleNamespace(name="m", features=["a", "x", "b", "y"], categories={}, rates=())
    many = EventMatrix.from_columns(np.arange(5), columns)
    lone = EventMatrix.from_columns(np.arange(1), {k: v[[3]] for k, v in columns.items()})
    rows = {"x": rng.random(6), "y": rng.random(6)}
    want = many.model_matrix(model, np.full(6, 3), rows)
    got = lone.model_matrix(model, np.zeros(6, dtype=np.int64), rows)
    np.testing.assert_array_equal(got, want)
    assert got.flags.c_contiguous == want.flags.c_contiguous and got.shape == (6, 4)


def test_string_labels_as_codes_over_the_models_categories():
    from training.models.matrix import as_labels

    categories = ("remind", "ask", "final", "b")  # not sorted: codes in training order
    values = np.array(["ask", "b", "remind", "ask", "final"], dtype=object)
    got = as_labels(values, categories)
    assert got is not None
    np.testing.assert_array_equal(got.values(), values)
    np.testing.assert_array_equal(
        category_codes(got.labels, categories)[got.codes], category_codes(values, categories)
    )
    for other in (None, np.nan, "unseen", 3):  # missing, unseen, no string: the general path
        assert as_labels(np.array(["ask", other], dtype=object), categories) is None
    assert as_labels(values, ("ask", 1)) is None  # a category that is no string


def test_a_matrix_of_string_templates_equals_every_row_encoded():
    """The whole-schedule scoring passes templates and channels as strings: turned into
    labels over the model's categories, the matrix (codes and the template's pair rate)
    is the one each row's own encoding gives, for one event and for many, and with a
    missing or unseen template (the general path)."""
    from types import SimpleNamespace

    from training.models.matrix import EventMatrix

    rng = np.random.default_rng(11)
    cats = np.array(["card", "funds", "fraud"], dtype=object)
    templates = ["remind", "ask", "final"]
    n_rows = 40
    fit_t = np.array(templates, dtype=object)[rng.integers(0, 3, 300)]
    rate = PairRate("t_rate", "template", "cat").fit(
        fit_t, cats[rng.integers(0, 3, 300)], rng.integers(0, 2, 300)
    )
    model = SimpleNamespace(
        name="message",
        features=["a", "template", "cat", "channel", "t_rate", "x"],
        categories={"template": templates, "channel": ["email", "sms"], "cat": list(cats)},
        rates=(rate,),
    )
    for n_events in (1, 4):
        events = EventMatrix.from_columns(
            np.arange(n_events),
            {"a": rng.random(n_events), "cat": cats[rng.integers(0, 3, n_events)]},
        )
        pos = rng.integers(0, n_events, n_rows)
        for extra in ((), (None,), ("unseen",)):
            pool = np.array([*templates, *extra], dtype=object)
            template = pool[rng.integers(0, len(pool), n_rows)]
            template[0] = pool[-1]
            channel = np.array(["sms", "email"], dtype=object)[rng.integers(0, 2, n_rows)]
            x = rng.random(n_rows)
            columns = {"template": template, "channel": channel, "x": x}
            got = events.model_matrix(model, pos, columns)
            want = np.column_stack(
                [
                    events.column("a")[pos],
                    category_codes(template, templates),
                    category_codes(events.column("cat")[pos], list(cats)),
                    category_codes(channel, ["email", "sms"]),
                    rate.lookup(template, events.column("cat")[pos]),
                    x,
                ]
            )
            np.testing.assert_array_equal(got, want)
            assert columns["template"] is template  # the caller's columns are left as given


def test_read_only_labels_are_encoded_once_across_calls():
    """Labels made once and never written (the search's templates and channels) keep their
    encoding across calls' matrices, per category list; other labels per matrix."""
    from training.models.matrix import EventMatrix

    first, second = (EventMatrix.from_columns(np.arange(1), {"a": np.zeros(1)}) for _ in "12")
    kept = np.array(["sms", "email", "fax"], dtype=object)
    kept.flags.writeable = False
    cats, other = ("email", "sms"), ("sms", "fax")
    got = first._encoded_labels(kept, cats)
    np.testing.assert_array_equal(got, category_codes(kept, cats))
    assert second._encoded_labels(kept, cats) is got  # kept across matrices
    np.testing.assert_array_equal(second._encoded_labels(kept, other), category_codes(kept, other))
    written = kept.copy()  # writable: encoded per matrix
    assert first._encoded_labels(written, cats) is not second._encoded_labels(written, cats)


def test_a_batch_sized_string_column_keeps_the_general_path():
    """From LABEL_ROWS rows the strings are encoded by distinct label (cheaper than their
    binary search); below, as labels."""
    from training.models.matrix import LABEL_ROWS, Labels, _labelled

    row_categories = (("template", ("ask", "remind")),)
    big = np.array(["ask", "remind"] * (LABEL_ROWS // 2), dtype=object)
    assert _labelled({"template": big}, row_categories)["template"] is big
    small = big[: LABEL_ROWS - 1]
    assert isinstance(_labelled({"template": small}, row_categories)["template"], Labels)


def test_one_string_label_is_coded_as_pandas_codes_it():
    """A lone request's event column (one string) skips ``pd.factorize``: the same codes
    and labels; one missing or non-string value keeps the general path."""
    for value in ["card", "", "01", "insufficient_funds"]:
        codes, labels = _row_codes(np.array([value], dtype=object))
        want, uniques = pd.factorize(np.array([value], dtype=object))
        assert codes.dtype == (want % 2).dtype and codes.tolist() == (want % 2).tolist()
        assert labels.dtype == object and labels.tolist() == [*uniques.tolist(), None]
    for value in [None, np.nan]:
        codes, labels = _row_codes(np.array([value], dtype=object))
        assert codes.tolist() == [0] and labels.tolist() == [None]
    assert _row_codes(np.array([3], dtype=object)) is None

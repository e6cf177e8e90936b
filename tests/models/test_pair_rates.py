"""Pair rates: the (template, decline category) interaction as one smoothed number."""

from __future__ import annotations

import numpy as np
import pytest

from training.models.pair_rates import FOLDS, PairRate, fold_of

RATE = PairRate("template_category_rate", "template", "inv_decline_category", smoothing=10.0)


def _rows(n_per_pair: int = 200, seed: int = 3):
    """update requests work after expired cards (40%), not after insufficient funds (2%);
    reminders 5% after either."""
    rng = np.random.default_rng(seed)
    pairs = [("update", "expired_card", 0.40), ("update", "insufficient_funds", 0.02)]
    pairs += [("reminder", "expired_card", 0.05), ("reminder", "insufficient_funds", 0.05)]
    left, right, label = [], [], []
    for template, category, p in pairs:
        left += [template] * n_per_pair
        right += [category] * n_per_pair
        label += list(rng.random(n_per_pair) < p)
    return (
        np.array(left, dtype=object),
        np.array(right, dtype=object),
        np.array(label, dtype=float),
    )


def test_the_pair_rate_separates_what_the_template_rate_averages():
    left, right, label = _rows()
    fitted = RATE.fit(left, right, label)
    rates = fitted.lookup(
        np.array(["update", "update", "reminder"], dtype=object),
        np.array(["expired_card", "insufficient_funds", "expired_card"], dtype=object),
    )
    assert rates[0] == pytest.approx(0.40, abs=0.06)
    assert rates[1] == pytest.approx(0.02, abs=0.03)
    assert rates[2] == pytest.approx(0.05, abs=0.03)


def test_rare_pairs_shrink_to_the_template_and_unseen_values_fall_back():
    left = np.array(["update"] * 100 + ["update"], dtype=object)
    right = np.array(["expired_card"] * 100 + ["fraud"], dtype=object)
    label = np.array([0.0] * 80 + [1.0] * 20 + [1.0])  # 20% over all, 1/1 on fraud
    fitted = RATE.fit(left, right, label)
    template_rate = fitted.left_rate["update"]
    fraud = fitted.lookup(np.array(["update"], dtype=object), np.array(["fraud"], dtype=object))
    assert template_rate < fraud[0] < 1.0  # one success moves it only part of the way
    unseen = fitted.lookup(
        np.array(["update", "final_notice", None], dtype=object),
        np.array(["lost_or_stolen", "expired_card", "expired_card"], dtype=object),
    )
    assert unseen[0] == pytest.approx(template_rate)
    assert unseen[1] == pytest.approx(fitted.prior) and unseen[2] == pytest.approx(fitted.prior)


def test_out_of_fold_rows_never_see_their_own_invoice():
    left, right, label = _rows(n_per_pair=50)
    groups = np.repeat(np.arange(len(label) // 2), 2)  # two rows per invoice
    oof = RATE.out_of_fold(left, right, label, groups)
    # the one pair row whose label is flipped: its own rate must not move
    flipped = label.copy()
    flipped[0] = 1.0 - flipped[0]
    again = RATE.out_of_fold(left, right, flipped, groups)
    fold = fold_of(groups)
    same_fold = fold == fold[0]
    assert oof[0] == again[0] and oof[1] == again[1]  # the invoice's own rows
    assert not np.allclose(
        oof[~same_fold & (left == left[0]) & (right == right[0])],
        again[~same_fold & (left == left[0]) & (right == right[0])],
    )


RANK = PairRate(
    "category_rank_rate", "inv_decline_category", "retries_before", right_bins=(0.5, 1.5)
)


def test_a_numeric_right_column_counts_by_bucket():
    """First retries pay 30%, second 10%, third and later 2% (one bucket from the second
    edge on); the rate reads the same from ints, floats and objects, missing apart."""
    rng = np.random.default_rng(5)
    rank = np.repeat([0, 1, 2, 3, 4], 400)
    p = np.array([0.30, 0.10, 0.02, 0.02, 0.02])[rank]
    label = (rng.random(len(rank)) < p).astype(float)
    left = np.full(len(rank), "insufficient_funds", dtype=object)
    fitted = RANK.fit(left, rank.astype(float), label)
    asked = fitted.lookup(left[:4], np.array([0, 1, 2, 7]))
    assert asked[0] == pytest.approx(0.30, abs=0.05)
    assert asked[1] == pytest.approx(0.10, abs=0.04)
    assert asked[2] == pytest.approx(0.02, abs=0.02) and asked[3] == asked[2]
    as_objects = fitted.lookup(left[:3], np.array([0.0, 1.0, 2.0], dtype=object))
    np.testing.assert_array_equal(as_objects, asked[:3])
    missing = fitted.lookup(left[:1], np.array([np.nan]))
    assert missing[0] == pytest.approx(fitted.left_rate["insufficient_funds"])


def test_every_model_pair_rate_reads_columns_the_model_has():
    """Serving looks a pair rate up from the model's own rows: its two columns must be
    inputs of that model (built by the same feature code in training and serving)."""
    from training.models.fit import MODEL_FEATURES, PAIR_RATES

    for name, pairs in PAIR_RATES.items():
        for pair in pairs:
            assert pair.name in MODEL_FEATURES[name]
            assert {pair.left, pair.right} <= set(MODEL_FEATURES[name])


def test_folds_follow_the_group_not_the_row_order():
    groups = np.array([f"inv_{i}" for i in range(500)], dtype=object)
    fold = fold_of(groups)
    order = np.random.default_rng(1).permutation(len(groups))
    np.testing.assert_array_equal(fold_of(groups[order]), fold[order])
    assert set(fold) == set(range(FOLDS))
    left, right, label = _rows(n_per_pair=50)
    ids = np.arange(len(label)).astype(str)
    oof = RATE.out_of_fold(left, right, label, ids)
    shuffled = np.random.default_rng(2).permutation(len(label))
    again = RATE.out_of_fold(left[shuffled], right[shuffled], label[shuffled], ids[shuffled])
    np.testing.assert_array_equal(again, oof[shuffled])

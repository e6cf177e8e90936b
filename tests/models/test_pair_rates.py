"""Pair rates: the (template, decline category) interaction as one smoothed number."""

from __future__ import annotations

import numpy as np
import pytest

from training.models.pair_rates import FOLDS, PairRate

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
    fold = np.arange(len(label) // 2).repeat(2) % FOLDS
    same_fold = fold == fold[0]
    assert oof[0] == again[0] and oof[1] == again[1]  # the invoice's own rows
    assert not np.allclose(
        oof[~same_fold & (left == left[0]) & (right == right[0])],
        again[~same_fold & (left == left[0]) & (right == right[0])],
    )

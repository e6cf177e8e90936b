"""The kinds with a calendar slope and their moves, kept per decider
(``ModelDecider._calendar_kinds``), equal their computation from the decider's slopes and
moves, and follow new ones assigned to it."""

from __future__ import annotations

import numpy as np

from training.config.policy import PolicyConfig
from training.policy.calendar import DAY_NS, HOUR_NS
from training.policy.decider import ModelDecider, calendar_kinds

MOVES = {"retry": np.array([-DAY_NS, DAY_NS]), "message": np.array([-HOUR_NS, HOUR_NS])}


def _decider(**calendar) -> ModelDecider:
    return ModelDecider(None, None, PolicyConfig(), [], "test", **calendar)  # type: ignore[arg-type]


def test_kept_kinds_equal_their_computation():
    slopes = {"retry": (1.0, 0.0), "message": 0.0}
    by_category = {"message": {"hard": 0.5}, "retry": {"technical": 0.0}}
    decider = _decider(
        calendar_slopes=slopes, calendar_moves=MOVES, calendar_category_slopes=by_category
    )
    want = calendar_kinds(slopes, by_category, MOVES)
    assert want.sloped == {"retry", "message"}
    assert decider._sloped_kinds() == want.sloped
    assert decider._contrast_moves().keys() == want.moves.keys() == {"retry", "message"}
    for kind, moves in want.moves.items():
        np.testing.assert_array_equal(decider._contrast_moves()[kind], moves)
    assert decider._calendar_kinds() is decider._calendar_kinds()  # worked out once


def test_new_slopes_or_moves_are_seen():
    decider = _decider(calendar_slopes={"retry": 1.0}, calendar_moves=MOVES)
    assert decider._sloped_kinds() == {"retry"} and set(decider._contrast_moves()) == {"retry"}
    decider.calendar_slopes = {}
    assert decider._sloped_kinds() == set() and decider._contrast_moves() == {}
    decider.calendar_category_slopes = {"message": {"hard": 2.0}}
    assert decider._sloped_kinds() == {"message"}
    decider.calendar_moves = {"retry": MOVES["retry"]}  # no message moves: no contrast
    assert decider._sloped_kinds() == {"message"} and decider._contrast_moves() == {}


def test_a_decider_without_calendar_has_no_kinds():
    decider = _decider()
    assert decider._sloped_kinds() == set() and decider._contrast_moves() == {}

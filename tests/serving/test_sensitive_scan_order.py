"""The card-data scan's walk (iterators per open object, scalars checked where they
stand, known field names checked as one set) refuses exactly what the plain
stack walk refused, with the same code and field, and the first one in the same order."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from training.api.errors import ApiError
from training.api.sensitive import (
    _ACCOUNT_KEYS,
    _MAYBE_CARD_OR_IBAN,
    _SECURITY_CODE_KEYS,
    _loc,
    _normalized_key,
    _refuse,
    contains_card_number,
    contains_iban,
    scan,
)

CARD = "4242 4242 4242 4242"
IBAN = "DE89 3704 0044 0532 0130 00"


def _reference_scan(body: Any, prefix: str = "") -> None:
    """The walk as it was before (one stack of values, every value pushed)."""
    stack: list[tuple[Any, Any]] = [(None, body)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, inner in reversed(value.items()):
                name = _normalized_key(str(key))
                if name in _SECURITY_CODE_KEYS:
                    raise _refuse(
                        "card_security_code_refused",
                        "a card security code",
                        [*_loc(path), key],
                        prefix,
                    )
                if name in _ACCOUNT_KEYS:
                    raise _refuse(
                        "account_number_refused",
                        "a card or bank account number",
                        [*_loc(path), key],
                        prefix,
                    )
                stack.append(((path, str(key)), inner))
        elif isinstance(value, list):
            stack.extend(((path, i), value[i]) for i in range(len(value) - 1, -1, -1))
        elif isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value)
            if len(text) < 13:
                continue
            if contains_card_number(text):
                raise _refuse("card_number_refused", "a card number", _loc(path), prefix)
            if isinstance(value, str) and len(text) >= 15 and contains_iban(text):
                raise _refuse("iban_refused", "a bank account number (IBAN)", _loc(path), prefix)


def _outcome(function: Any, body: Any) -> tuple[str, str | None] | None:
    try:
        function(copy.deepcopy(body), "items[0]")
    except ApiError as error:
        return error.body.code, error.body.field
    return None


ITEM = {
    "invoice_id": "in_1",
    "customer_id": "cus_1",
    "amount_minor": 14830,
    "currency": "GBP",
    "card_brand": None,
    "failed_at": "2025-08-05T21:44:30Z",
    "customer": {"timezone": "Europe/London", "sms_opt_in": True},
    "previous_attempts": [{"at": "2025-08-01T10:00:00Z", "decline_code": "51"}],
}


def _with(path: list[Any], value: Any, key: str | None = None) -> dict:
    body = copy.deepcopy(ITEM)
    target: Any = body
    for part in path:
        target = target[part]
    if key is not None:
        target[key] = value
    else:
        target.append(value)
    return body


BODIES = [
    ITEM,
    [ITEM, ITEM],
    "plain text",
    4242424242424242,
    CARD,
    _with([], CARD, "note"),
    _with([], int(CARD.replace(" ", "")), "amount_minor"),
    _with([], True, "flag"),
    _with(["customer"], IBAN, "timezone"),
    _with(["previous_attempts"], {"cvv": "123"}),
    _with(["previous_attempts", 0], CARD, "decline_code"),
    _with(["previous_attempts"], [CARD, IBAN]),
    # two refusals: the first one met (depth first, document order) wins
    {**_with(["customer"], CARD, "notes"), "memo": IBAN},
    {"memo": IBAN, **_with(["customer"], CARD, "notes")},
    # field names are checked before the object's values, the last bad name first
    {"note": CARD, "cvc": "1", "iban": "x", "nested": {"pan": "1"}},
    {"nested": {"card_number": "1"}, "CVV2": "1"},
    {1: "one", 2.5: CARD},
    [[[[{"deep": [CARD]}]]]],
    {"a": [], "b": {}, "c": [{}], "d": IBAN},
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_the_scan_refuses_what_the_plain_walk_refused(body: Any) -> None:
    assert _outcome(scan, body) == _outcome(_reference_scan, body)
    # a second pass (field names now known) answers the same
    assert _outcome(scan, body) == _outcome(_reference_scan, body)


def test_the_cases_cover_refusals_and_passes() -> None:
    outcomes = [_outcome(_reference_scan, body) for body in BODIES]
    assert outcomes[0] is None and outcomes[1] is None
    codes = {outcome[0] for outcome in outcomes if outcome is not None}
    assert codes == {
        "card_number_refused",
        "iban_refused",
        "card_security_code_refused",
        "account_number_refused",
    }


def test_the_quick_search_finds_every_text_the_exact_checks_refuse() -> None:
    """:data:`_MAYBE_CARD_OR_IBAN` is a necessary condition: every text holding a card
    number or an IBAN matches it (random texts of digits, separators and letters around
    valid numbers), and a timestamp does not (the common case it skips)."""
    rng = random.Random(7)
    alphabet = "0123456789 -./_\t\u00a0ABZabz:T"
    numbers = [CARD.replace(" ", ""), "378282246310005", IBAN.replace(" ", ""), IBAN]
    refused = 0
    for _ in range(3000):
        number = rng.choice(numbers)
        if number[0].isdigit():  # a card: up to three separators between digits
            number = (
                "".join(
                    c + "".join(rng.choice(" -./_\t") for _ in range(rng.randint(0, 3)))
                    for c in number[:-1]
                )
                + number[-1]
            )
        noise = [rng.choice(alphabet) for _ in range(rng.randint(0, 12))]
        cut = rng.randint(0, len(noise))
        text = "".join(noise[:cut]) + number + "".join(noise[cut:])
        if contains_card_number(text) or contains_iban(text):
            refused += 1
            assert _MAYBE_CARD_OR_IBAN.search(text), text
    assert refused > 1000  # (noise next to a number can spoil it)
    for _ in range(3000):  # texts of any of those characters
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(13, 40)))
        if contains_card_number(text) or contains_iban(text):
            assert _MAYBE_CARD_OR_IBAN.search(text), text
    assert _MAYBE_CARD_OR_IBAN.search("2025-08-05T21:44:30Z") is None

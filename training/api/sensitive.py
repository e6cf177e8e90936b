"""Refuse card numbers, card security codes and IBANs anywhere in a request body.

smartretry never needs payment credentials, so a request that carries one is refused
(422) before it is validated, stored or logged, and the error names only the field.

* card number: a run of 13-19 digits (up to three separators between digits: any
  whitespace, ``-``, ``.``, ``/``, ``_``) that is
  Luhn-valid and starts with a payment-card industry digit (2-6: Mastercard, Amex, JCB,
  Diners, Visa, Discover, UnionPay). JSON numbers are checked too.
* card security code: a field named like one (``cvc``, ``cvv``, ``cvv2``,
  ``security_code``, ``card_verification_value``, ...) whatever its value; fields named
  like a card number or a bank account (``card_number``, ``pan``, ``iban``, ...) too.
* IBAN: two letters, two check digits and 11-30 letters/digits (spaces allowed) that
  pass the country format and the ISO 7064 mod-97 check.

Checksums come from python-stdnum.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from stdnum import iban as stdnum_iban
from stdnum import luhn

from training.api.errors import ApiError, field_path

_SEPARATOR = r"[\s\-./_]"
_CARD_RUN = re.compile(rf"(?<![0-9])[0-9](?:{_SEPARATOR}{{0,3}}[0-9]){{12,18}}(?![0-9])")
_IBAN_RUN = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])"
)
_MAYBE_CARD_OR_IBAN = re.compile(rf"[0-9](?:[0-9]|{_SEPARATOR}){{12}}|[A-Za-z0-9 ]{{15}}")
"""What every card run and IBAN run holds: a digit and 12 more digits or separators
(a card run is 13-19 digits with separators between them), or 15 letters, digits or
spaces in a row. One search of this finds most texts (timestamps, ids, names) free of
both, for a fifth of the two exact searches' cost."""
_SECURITY_CODE_KEYS = frozenset(
    {
        "cvc",
        "cvc2",
        "cvv",
        "cvv2",
        "cvn",
        "cvn2",
        "cid",
        "csc",
        "cav2",
        "securitycode",
        "cardsecuritycode",
        "cardverificationcode",
        "cardverificationvalue",
        "cardcode",
    }
)
_ACCOUNT_KEYS = frozenset(
    {
        "cardnumber",
        "pan",
        "primaryaccountnumber",
        "ccnumber",
        "creditcardnumber",
        "iban",
        "bankaccount",
        "bankaccountnumber",
        "accountnumber",
    }
)


_SHORTEST_CARD_RUN = 13  # digits; a shorter text cannot hold a card number
_SHORTEST_IBAN = 15  # characters


@lru_cache(maxsize=4096)  # bodies repeat the same few field names
def _normalized_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


Path = tuple[Any, ...] | None
"""A value's location as a chain ``(parent, key)`` (``None``: the body), made into a
list only for an error: building a list per value cost more than checking it."""


def _loc(path: Path) -> list[str | int]:
    keys: list[str | int] = []
    while path is not None:
        path, key = path
        keys.append(key)
    return keys[::-1]


def contains_card_number(text: str) -> bool:
    for match in _CARD_RUN.finditer(text):
        digits = re.sub(r"[^0-9]", "", match.group())
        if digits[0] in "23456" and luhn.is_valid(digits):
            return True
    return False


def contains_iban(text: str) -> bool:
    """True when a run starting like an IBAN has a valid IBAN as its prefix (the run may
    continue into following words: ``DE89 3704 0044 0532 0130 00 please``)."""
    for match in _IBAN_RUN.finditer(text):
        compact = match.group().replace(" ", "").upper()
        if any(stdnum_iban.is_valid(compact[:n]) for n in range(15, min(len(compact), 34) + 1)):
            return True
    return False


def _refuse(code: str, what: str, loc: list[str | int], prefix: str) -> ApiError:
    field = field_path(loc, prefix) or None
    return ApiError(
        422,
        code,
        f"{field or 'request body'}: {what} is never accepted by smartretry; "
        "remove it from the request (it was neither stored nor logged)",
        field,
    )


_KEY_REFUSALS: dict[str, tuple[str, str] | None] = {}
"""Per field name seen: the refusal it earns (code, what), or None (bodies repeat the
same few names: one dictionary read per field)."""
_MOST_KEYS = 4096


def _key_refusal(key: Any) -> tuple[str, str] | None:
    """The refusal a field named ``key`` earns, None for most names."""
    if key.__class__ is str and key in _KEY_REFUSALS:
        return _KEY_REFUSALS[key]
    name = _normalized_key(str(key))
    refusal: tuple[str, str] | None = None
    if name in _SECURITY_CODE_KEYS:
        refusal = ("card_security_code_refused", "a card security code")
    elif name in _ACCOUNT_KEYS:
        refusal = ("account_number_refused", "a card or bank account number")
    if key.__class__ is str:  # (1 and True hash alike, but read differently)
        if len(_KEY_REFUSALS) >= _MOST_KEYS:
            _KEY_REFUSALS.clear()
            _SAFE_KEYS.clear()
        _KEY_REFUSALS[key] = refusal
        if refusal is None:
            _SAFE_KEYS.add(key)
    return refusal


_SAFE_KEYS: set[str] = set()
"""Field names seen and earning no refusal (an object of those only: one set call)."""


def _check_keys(value: dict, path: Path, prefix: str) -> None:
    """Refuse the last field of ``value`` named like a card or account datum."""
    if _SAFE_KEYS.issuperset(value):
        return
    for key in reversed(value):
        refusal = _key_refusal(key)
        if refusal is not None:
            raise _refuse(*refusal, [*_loc(path), key], prefix)


def _check_scalar(value: Any, path: Path, prefix: str) -> None:
    """Refuse a string or integer holding a card number or (strings) an IBAN."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        if len(text) < _SHORTEST_CARD_RUN or _MAYBE_CARD_OR_IBAN.search(text) is None:
            return
        if contains_card_number(text):
            raise _refuse("card_number_refused", "a card number", _loc(path), prefix)
        if isinstance(value, str) and len(text) >= _SHORTEST_IBAN and contains_iban(text):
            raise _refuse("iban_refused", "a bank account number (IBAN)", _loc(path), prefix)


def scan(body: Any, prefix: str = "") -> None:
    """Raise :class:`ApiError` (422) at the first card number, security code or IBAN.

    Depth first in document order; an object's field names are checked before its
    values. The walk keeps one iterator per open object or array (no recursion, however
    deep the body), and checks the scalars where they stand: a path is made only for an
    error or a nested object."""
    if not isinstance(body, dict | list):
        _check_scalar(body, None, prefix)
        return
    if isinstance(body, dict):
        _check_keys(body, None, prefix)
    stack: list[tuple[Path, Any, bool]] = [
        (
            None,
            iter(body.items()) if isinstance(body, dict) else enumerate(body),
            isinstance(body, dict),
        )
    ]
    while stack:
        path, children, named = stack[-1]
        for key, value in children:
            if value.__class__ is str:  # most values: short strings, no path made
                if len(value) >= _SHORTEST_CARD_RUN:
                    _check_scalar(value, (path, str(key) if named else key), prefix)
            elif isinstance(value, dict):
                inner = (path, str(key) if named else key)
                _check_keys(value, inner, prefix)
                stack.append((inner, iter(value.items()), True))
                break
            elif isinstance(value, list):
                stack.append(((path, str(key) if named else key), enumerate(value), False))
                break
            elif value is not None:
                _check_scalar(value, (path, str(key) if named else key), prefix)
        else:
            stack.pop()

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


def scan(body: Any, prefix: str = "") -> None:
    """Raise :class:`ApiError` (422) at the first card number, security code or IBAN."""
    stack: list[tuple[Path, Any]] = [(None, body)]
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
            # children were pushed in reverse, so they pop in document order
        elif isinstance(value, list):
            stack.extend(((path, i), value[i]) for i in range(len(value) - 1, -1, -1))
        elif isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value)
            if len(text) < _SHORTEST_CARD_RUN:
                continue
            if contains_card_number(text):
                raise _refuse("card_number_refused", "a card number", _loc(path), prefix)
            if isinstance(value, str) and len(text) >= _SHORTEST_IBAN and contains_iban(text):
                raise _refuse("iban_refused", "a bank account number (IBAN)", _loc(path), prefix)

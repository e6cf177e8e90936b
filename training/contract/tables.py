"""Column definitions of the four data-contract tables.

This module is the single place that names the contract's tables, columns, types and
enums; readers, writers, validation and the simulator all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnKind = Literal["id", "string", "timestamp", "int", "float", "bool", "enum"]

PAYMENT_METHODS = ("card", "sepa_debit", "bacs_debit", "ach_debit")
CARD_BRANDS = ("visa", "mastercard", "amex", "discover", "other")
PROCESSORS = ("stripe", "adyen", "braintree", "sepa", "bacs", "ach")
INITIATED_BY = ("merchant", "customer")
OUTCOMES = ("succeeded", "failed")
CHANNELS = ("email", "sms")
TABLE_NAMES = ("customers", "invoices", "attempts", "messages")


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    required: bool
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    columns: tuple[Column, ...]

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


CUSTOMERS = Table(
    "customers",
    "customer_id",
    (
        Column("customer_id", "id", True),
        Column("country", "string", True),
        Column("timezone", "string", True),
        Column("signup_at", "timestamp", True),
        Column("plan", "string", False),
        Column("sms_opt_in", "bool", False),
    ),
)

# what a customer record holds besides its id (requests, the store and exports share it)
CUSTOMER_FIELDS = tuple(c for c in CUSTOMERS.column_names if c != CUSTOMERS.key)

INVOICES = Table(
    "invoices",
    "invoice_id",
    (
        Column("invoice_id", "id", True),
        Column("customer_id", "id", True),
        Column("amount_minor", "int", True),
        Column("currency", "string", True),
        Column("payment_method", "enum", True, PAYMENT_METHODS),
        # required for cards only: enforced as a row rule, not a column rule
        Column("card_brand", "enum", False, CARD_BRANDS),
        Column("processor", "enum", True, PROCESSORS),
        Column("due_at", "timestamp", True),
    ),
)

ATTEMPTS = Table(
    "attempts",
    "attempt_id",
    (
        Column("attempt_id", "id", True),
        Column("invoice_id", "id", True),
        Column("attempted_at", "timestamp", True),
        Column("initiated_by", "enum", True, INITIATED_BY),
        Column("outcome", "enum", True, OUTCOMES),
        # required when failed: a row rule
        Column("decline_code", "string", False),
        Column("merchant_advice_code", "string", False),
        Column("propensity", "float", False),
    ),
)

MESSAGES = Table(
    "messages",
    "message_id",
    (
        Column("message_id", "id", True),
        Column("invoice_id", "id", True),
        Column("sent_at", "timestamp", True),
        Column("channel", "enum", True, CHANNELS),
        Column("template", "string", True),
        Column("propensity", "float", False),
        Column("opened_at", "timestamp", False),
        Column("clicked_at", "timestamp", False),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (CUSTOMERS, INVOICES, ATTEMPTS, MESSAGES)}

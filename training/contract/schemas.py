"""Pandera schemas of the four contract tables, applied to the typed frames of ``coerce``.

Types are settled by ``coerce`` (which knows why a value does not parse); these schemas
check values: required, unique keys, enums, ranges, ISO codes, IANA zones and the two
row rules (card_brand for cards, decline_code for failed attempts). Every check's
``error`` text is the reject reason, so failure cases map straight onto rejected rows.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones

import pandas as pd
import pandera.pandas as pa
import pycountry

from training.contract.coerce import PROBLEM_COLUMNS, empty_problems
from training.contract.tables import TABLES, Column, Table


def missing_reason(field: str) -> str:
    return f"{field} is missing (required)"


def duplicate_reason(field: str) -> str:
    return f"duplicate {field} (first occurrence kept)"


def enum_reason(column: Column) -> str:
    return f"{column.name} is not one of {', '.join(column.enum)}"


AMOUNT_REASON = "amount_minor is not > 0"
PROPENSITY_REASON = "propensity is not in (0, 1]"
COUNTRY_REASON = "country is not an ISO 3166-1 alpha-2 code"
CURRENCY_REASON = "currency is not an ISO 4217 code"
TIMEZONE_REASON = "timezone is not an IANA time zone"
CARD_BRAND_REASON = "card_brand is missing (required for card payments)"
DECLINE_CODE_REASON = "decline_code is missing (required when outcome is failed)"

# Row rules span columns; the field they blame in the rejects file:
ROW_RULE_FIELDS = {CARD_BRAND_REASON: "card_brand", DECLINE_CODE_REASON: "decline_code"}


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


@lru_cache(maxsize=1)
def currency_codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


@lru_cache(maxsize=1)
def timezone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _value_checks(column: Column) -> list[pa.Check]:
    if column.enum:
        return [pa.Check.isin(column.enum, error=enum_reason(column))]
    checks = {
        "amount_minor": lambda: pa.Check.gt(0, error=AMOUNT_REASON),
        "propensity": lambda: pa.Check.in_range(
            0, 1, include_min=False, include_max=True, error=PROPENSITY_REASON
        ),
        "country": lambda: pa.Check.isin(country_codes(), error=COUNTRY_REASON),
        "currency": lambda: pa.Check.isin(currency_codes(), error=CURRENCY_REASON),
        "timezone": lambda: pa.Check.isin(timezone_names(), error=TIMEZONE_REASON),
    }
    return [checks[column.name]()] if column.name in checks else []


def _row_rules(table: Table) -> list[pa.Check]:
    if table.name == "invoices":
        return [
            pa.Check(
                lambda df: ~(df["payment_method"].eq("card") & df["card_brand"].isna()),
                error=CARD_BRAND_REASON,
            )
        ]
    if table.name == "attempts":
        return [
            pa.Check(
                lambda df: ~(df["outcome"].eq("failed") & df["decline_code"].isna()),
                error=DECLINE_CODE_REASON,
            )
        ]
    return []


def table_schema(table: Table) -> pa.DataFrameSchema:
    """Value rules of one table; the dtypes are already canonical (see ``coerce``)."""
    columns = {
        column.name: pa.Column(
            None,
            checks=_value_checks(column),
            nullable=not column.required,
            unique=column.name == table.key,
            report_duplicates="exclude_first",
        )
        for column in table.columns
    }
    return pa.DataFrameSchema(columns, checks=_row_rules(table), strict=False, name=table.name)


@lru_cache(maxsize=len(TABLES))
def schema_for(table_name: str) -> pa.DataFrameSchema:
    return table_schema(TABLES[table_name])


def schema_problems(typed: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Run the table's schema lazily; one problem per (row, reason) it finds."""
    try:
        schema_for(table.name).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return _failure_problems(errors.failure_cases)
    return empty_problems()


def _failure_problems(cases: pd.DataFrame) -> pd.DataFrame:
    unplaced = cases[cases["index"].isna()]
    if len(unplaced):  # a schema-wide failure is a bug here, not bad input: say so loudly
        raise RuntimeError(f"schema failure not tied to a row:\n{unplaced.to_string()}")
    check = cases["check"].astype(str)
    column = cases["column"].astype(str)
    reason = check.copy()
    reason[check.eq("not_nullable")] = column.map(missing_reason)
    reason[check.eq("field_uniqueness")] = column.map(duplicate_reason)
    field = check.map(ROW_RULE_FIELDS).fillna(column)
    problems = pd.DataFrame(
        {"row": cases["index"].astype("int64"), "field": field, "reason": reason}
    )
    return problems.drop_duplicates(["row", "reason"]).reset_index(drop=True)[list(PROBLEM_COLUMNS)]

"""Machine-readable errors: every 4xx/5xx body is ``{"code", "message", "field"}``.

Validation errors of pydantic become one :class:`ErrorBody` with a field path in the
request's own notation (``items[3].amount_minor``, ``events[2].type``). Messages never
repeat the offending value, so nothing sensitive can leak into a response or a log.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from training.api.schemas import EVENT_TYPES, ErrorBody

_CODES = {
    "missing": "missing_field",
    "union_tag_not_found": "missing_field",
    "extra_forbidden": "unknown_field",
    "literal_error": "invalid_enum",
    "enum": "invalid_enum",
    "union_tag_invalid": "invalid_enum",
    "datetime_parsing": "invalid_timestamp",
    "datetime_type": "invalid_timestamp",
    "datetime_from_date_parsing": "invalid_timestamp",
    "datetime_object_invalid": "invalid_timestamp",
    "timezone_aware": "invalid_timestamp",
    "timestamp_out_of_range": "out_of_range",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "string_pattern_mismatch": "invalid_format",
    "string_too_short": "invalid_format",
    "string_too_long": "invalid_format",
    "int_type": "invalid_type",
    "int_parsing": "invalid_type",
    "int_from_float": "invalid_type",
    "float_type": "invalid_type",
    "float_parsing": "invalid_type",
    "bool_type": "invalid_type",
    "bool_parsing": "invalid_type",
    "string_type": "invalid_type",
    "list_type": "invalid_type",
    "dict_type": "invalid_type",
    "model_type": "invalid_type",
    "model_attributes_type": "invalid_type",
    "too_long": "too_many_items",
    "too_short": "too_few_items",
}
_OWN_CODES = {
    "invalid_timezone",
    "invalid_country",
    "invalid_currency",
    "card_brand_required",
    "attempt_after_failure",
    "decline_code_required",
    "customer_or_invoice_required",
}
# row rules are raised on the whole object; name the field they are about
_ROW_RULE_FIELD = {
    "card_brand_required": "card_brand",
    "attempt_after_failure": "previous_attempts",
    "decline_code_required": "decline_code",
    "customer_or_invoice_required": "customer_id",
}


class ApiError(Exception):
    """An error answered as JSON ``{"code", "message", "field"}`` with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(code=code, message=message, field=field)
        self.headers = headers


def field_path(loc: Sequence[str | int], prefix: str = "") -> str:
    """``("items", 3, "amount_minor")`` → ``items[3].amount_minor``."""
    path = prefix
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in EVENT_TYPES and i > 0 and isinstance(loc[i - 1], int):
            continue  # the discriminator's branch name, not a field
        elif part.startswith(("function-", "tagged-union[")):
            continue
        else:
            path += f".{part}" if path else part
    return path


def from_validation_error(error: ValidationError, prefix: str = "") -> ErrorBody:
    """The first error of a pydantic validation, in the API's error shape."""
    first = error.errors(include_url=False, include_input=False)[0]
    kind = first["type"]
    code = kind if kind in _OWN_CODES else _CODES.get(kind, "invalid_value")
    loc = first["loc"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, "type")
    if kind in _ROW_RULE_FIELD:
        loc = (*loc, _ROW_RULE_FIELD[kind])
    field = field_path(loc, prefix) or None
    where = field or "request body"
    message = f"{where}: {first['msg']}"
    if kind == "extra_forbidden":
        message = f"{where}: unknown field (see the API contract for the accepted fields)"
    return ErrorBody(code=code, message=message, field=field)

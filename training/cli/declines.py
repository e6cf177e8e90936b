"""`smartretry declines ...`: explain one decline code, list the reference table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Decline codes: explain one, list the reference table.", no_args_is_help=True
)

DEBIT_METHODS = {"sepa": "sepa_debit", "bacs": "bacs_debit", "ach": "ach_debit"}
LIST_COLUMNS = ["processor", "code", "category", "retryable", "description"]


def _table():
    from training.declines.table import load_decline_table

    return load_decline_table()


def _vocabulary(table, processor: str) -> str:
    from training.declines.table import UnknownProcessorError

    try:
        return table.check_processor(processor)
    except UnknownProcessorError as error:
        raise typer.BadParameter(str(error), param_hint="'--processor'") from error


@app.command()
def explain(
    processor: Annotated[
        str, typer.Option("--processor", help="vocabulary, e.g. stripe, sepa, visa")
    ],
    code: Annotated[str, typer.Option("--code", help="raw decline code as the processor sent it")],
    mac: Annotated[
        str | None, typer.Option("--mac", help="Mastercard merchant advice code, e.g. 03")
    ] = None,
    payment_method: Annotated[
        str | None,
        typer.Option(help="card, sepa_debit, bacs_debit or ach_debit (default: from processor)"),
    ] = None,
    card_brand: Annotated[
        str | None, typer.Option(help="visa, mastercard, ... (default: mastercard with --mac)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    params: Annotated[
        Path | None, typer.Option("--params", help="params.yaml with a retry_rules section")
    ] = None,
) -> None:
    """Category, retryable, the retry rule that applies and its source, for one code."""
    from training.config.params import load_params
    from training.declines.rules import PAYMENT_METHODS, RetryRules

    table = _table()
    vocabulary = _vocabulary(table, processor)
    method = payment_method or DEBIT_METHODS.get(vocabulary, "card")
    if method not in PAYMENT_METHODS:
        raise typer.BadParameter(
            f"{method!r} is not one of {', '.join(PAYMENT_METHODS)}",
            param_hint="'--payment-method'",
        )
    brand = card_brand or ("mastercard" if mac else "visa" if vocabulary == "visa" else None)
    info = table.lookup(vocabulary, code)
    rules = RetryRules(load_params(params).retry_rules, table)
    decision = rules.decide(
        processor=vocabulary,
        payment_method=method,
        card_brand=brand,
        decline_code=code,
        merchant_advice_code=mac,
        failed_at=datetime.now(UTC),
    )
    mac_info = table.lookup("mastercard_mac", mac) if mac else None
    fields = type(rules.limits).model_fields
    limits = [
        {
            "name": name,
            "value": getattr(rules.limits, name),
            "description": fields[name].description,
        }
        for name in rules.limits.applicable(method, brand)
    ]
    result = {
        "processor": vocabulary,
        "raw_code": code,
        "code": info.code,
        "known": info.known,
        "description": info.description,
        "code_category": info.category,
        "code_retryable": info.retryable,
        "code_source": info.source,
        "code_checked_on": info.checked_on,
        "merchant_advice_code": None
        if mac_info is None
        else {"code": mac_info.code, "known": mac_info.known, "description": mac_info.description},
        "payment_method": method,
        "card_brand": brand,
        "category": decision.category,
        "retryable": decision.retryable,
        "allowed": decision.allowed,
        "max_additional_retries": decision.max_additional_retries,
        "needs_update_first": decision.needs_update_first,
        "rule": decision.rule,
        "explanation": decision.explanation,
        "rule_source": decision.source,
        "limits": limits,
        "table_version": table.version,
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    known = "known" if info.known else "NOT in the reference table"
    lines = [
        ("code", f"{vocabulary} {info.code or '(none)'} ({known})"),
        ("description", info.description),
        ("code source", info.source or "-"),
        ("code checked", info.checked_on or "-"),
    ]
    if mac_info is not None:
        lines.append(("mac", f"{mac_info.code} {mac_info.description}"))
    lines += [
        ("category", decision.category),
        ("retryable", decision.retryable),
        (
            "rule",
            f"{decision.rule} (allowed now: {'yes' if decision.allowed else 'no'}, "
            f"max retries: {decision.max_additional_retries})",
        ),
        ("explanation", decision.explanation),
        ("rule source", decision.source),
        *(("limit", f"{lim['name']} = {lim['value']}: {lim['description']}") for lim in limits),
        ("table version", table.version),
    ]
    for label, value in lines:
        typer.echo(f"{label + ':':<14} {value}")


@app.command("list")
def list_codes(
    processor: Annotated[
        str | None, typer.Option("--processor", help="only this vocabulary")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON records")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="print CSV")] = False,
) -> None:
    """Print the decline reference table (all columns with --json/--csv)."""
    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv", param_hint="'--json'")
    table = _table()
    rows = table.rows
    if processor is not None:
        rows = rows[rows["processor"] == _vocabulary(table, processor)]
    if as_json:
        records = json.loads(rows.to_json(orient="records"))
        typer.echo(json.dumps({"version": table.version, "rows": records}, indent=2))
    elif as_csv:
        typer.echo(f"# version: {table.version}")
        typer.echo(rows.to_csv(index=False), nl=False)
    else:
        view = rows[LIST_COLUMNS].copy()
        view["description"] = view["description"].str.slice(0, 70)
        widths = {c: max(len(c), int(view[c].str.len().max() or 0)) for c in LIST_COLUMNS}
        header = "  ".join(c.ljust(widths[c]) for c in LIST_COLUMNS)
        body = view[LIST_COLUMNS[0]].str.ljust(widths[LIST_COLUMNS[0]])
        for column in LIST_COLUMNS[1:]:
            body = body + "  " + view[column].str.ljust(widths[column])
        typer.echo(f"decline reference table, version {table.version}, {len(view)} rows")
        typer.echo(header.rstrip())
        typer.echo("\n".join(body.str.rstrip()))

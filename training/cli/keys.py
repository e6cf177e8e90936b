"""`smartretry keys create|list|revoke`: API keys in the store the server reads.

Works against the same database as the server (``--database-url``, default
``SMARTRETRY_DATABASE_URL``); a running server sees a created or revoked key within
``SMARTRETRY_API_KEY_CACHE_SECONDS`` (5 s), no restart.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="API keys: create (shown once), list, revoke; stored hashed in the service's store.",
    no_args_is_help=True,
)

DatabaseOption = Annotated[
    str | None,
    typer.Option(help="store URL (default: SMARTRETRY_DATABASE_URL, else the SQLite file)"),
]


def _engine(database_url: str | None):
    from serving.settings import Settings
    from serving.store.db import make_engine, migrate

    engine = make_engine(database_url or Settings().database_url)
    migrate(engine)
    return engine


@app.command()
def create(
    scopes: Annotated[
        str, typer.Option(help="comma-separated: recommend, outcomes, admin")
    ] = "recommend,outcomes",
    name: Annotated[str | None, typer.Option(help="a label, e.g. the billing system")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Make a key; prints it once (only its SHA-256 digest is stored)."""
    from serving.store.api_keys import create_key, parse_scopes

    try:
        parsed = parse_scopes(scopes)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--scopes") from None
    key, row = create_key(_engine(database_url), parsed, name)
    typer.echo(f"key id: {row.key_id}  scopes: {','.join(sorted(row.scopes))}", err=True)
    typer.echo("the key (shown once, store it now):", err=True)
    typer.echo(key)


@app.command("list")
def list_command(database_url: DatabaseOption = None) -> None:
    """Every key: id, scopes, name, created, revoked (never the key)."""
    from serving.store.api_keys import list_keys

    typer.echo("key_id\tscopes\tname\tcreated_at\trevoked_at")
    for row in list_keys(_engine(database_url)):
        revoked = row.revoked_at.isoformat() if row.revoked_at else "-"
        typer.echo(
            f"{row.key_id}\t{','.join(sorted(row.scopes))}\t{row.name or '-'}\t"
            f"{row.created_at.isoformat()}\t{revoked}"
        )


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key id (from keys list)")],
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a key: refused by a running server within the key cache time."""
    from serving.store.api_keys import revoke_key

    if not revoke_key(_engine(database_url), key_id):
        typer.echo(f"error: no active key with id {key_id}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"revoked {key_id}")

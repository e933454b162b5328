"""`issuance-issuer`: the issuer kit's command line (installed with the package).

    issuance-issuer reconcile --base-url https://d1.example --issuer-id DEMOBANK01 \\
        --client-id demobank01 --client-secret … --database-url sqlite:///issuer.db [--json]

Every option can come from the environment (`ISSUANCE_ISSUER_BASE_URL`, …). Exit status 1 when
sequence holes remain after reconciling (the platform could not account for them), else 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from issuance.kit.auth import ClientSecret, Credentials, PrivateKeyAssertion
from issuance.kit.client import AsyncIssuerClient
from issuance.kit.dispatch import Handler
from issuance.kit.errors import IssuanceError
from issuance.kit.reconciler import ReconcileReport, reconcile
from issuance.kit.store import DEFAULT_URL, CardStore

app = typer.Typer(help="Issuer-side tools for the D1 physical-card API.", no_args_is_help=True)
out, err = Console(), Console(stderr=True)
ENV = "ISSUANCE_ISSUER_"


@app.callback()
def main() -> None:
    """Issuer-side tools for the D1 physical-card API."""


def _credentials(
    client_id: str | None, client_secret: str | None, private_key: Path | None, kid: str | None
) -> Credentials:
    if private_key is not None:
        return PrivateKeyAssertion(private_key.read_text(), kid=kid)
    if client_id and client_secret:
        return ClientSecret(client_id, client_secret)
    raise typer.BadParameter("give --client-id and --client-secret, or --private-key")


def _handler(path: str | None) -> Handler | None:
    if path is None:
        return None
    module, _, name = path.partition(":")
    try:
        return cast(Handler, getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError, ValueError) as error:
        raise typer.BadParameter(f"cannot import {path}: {error}") from None


def _print(report: ReconcileReport) -> None:
    table = Table("", "", title=f"reconcile {report.issuer_id}", show_header=False)
    table.add_row("change feed", f"{report.feed} ({report.feed_operations} operations)")
    holes = ", ".join(f"{g.card_id} {g.missing}" for g in report.sequence_gaps) or "none"
    table.add_row("sequence holes", holes)
    silent = ", ".join(f"{o.card_id} (due {o.due_date})" for o in report.silent_orders) or "none"
    table.add_row("silent past due", silent)
    table.add_row("asked productionStatus", ", ".join(report.cards_checked) or "none")
    if report.cards_unknown:
        table.add_row("unknown to the platform", ", ".join(report.cards_unknown))
    table.add_row("changes stored", str(report.changes))
    table.add_row("handler calls", str(report.handler_calls))
    remaining = ", ".join(f"{g.card_id} {g.missing}" for g in report.remaining_gaps)
    table.add_row("holes remaining", f"[red]{remaining}[/red]" if remaining else "none")
    out.print(table)


@app.command("reconcile")
def reconcile_command(
    base_url: Annotated[str, typer.Option(envvar=ENV + "BASE_URL", help="Platform URL.")],
    issuer_id: Annotated[str, typer.Option(envvar=ENV + "ID", help="e.g. DEMOBANK01.")],
    database_url: Annotated[
        str, typer.Option(envvar=ENV + "DATABASE_URL", help="The issuer's store.")
    ] = DEFAULT_URL,
    client_id: Annotated[str | None, typer.Option(envvar=ENV + "CLIENT_ID")] = None,
    client_secret: Annotated[str | None, typer.Option(envvar=ENV + "CLIENT_SECRET")] = None,
    private_key: Annotated[
        Path | None,
        typer.Option(envvar=ENV + "PRIVATE_KEY", help="EC key (PEM or JWK) for D1's JWT grant."),
    ] = None,
    kid: Annotated[str | None, typer.Option(envvar=ENV + "KID", help="Its registered kid.")] = None,
    handler: Annotated[
        str | None, typer.Option(help="module:function to call for each change found.")
    ] = None,
    feed: Annotated[bool, typer.Option(help="Read the change feed when there is one.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Find what the store missed (sequence holes, orders silent past due) and fetch it."""
    credentials = _credentials(client_id, client_secret, private_key, kid)
    on_change = _handler(handler)
    store = CardStore(database_url)
    store.create_schema()

    async def run() -> ReconcileReport:
        async with AsyncIssuerClient(base_url, issuer_id, credentials) as client:
            return await reconcile(store, client, handler=on_change, use_feed=feed)

    try:
        report = asyncio.run(run())
    except IssuanceError as error:
        err.print(f"[red]{type(error).__name__}[/red] {error}")
        raise typer.Exit(code=2) from None
    finally:
        store.engine.dispose()
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(report), indent=2))
    else:
        _print(report)
    if report.remaining_gaps:
        raise typer.Exit(code=1)

"""`issuance orders …` and `issuance stock …`: the bureau's hands on the command line."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from issuance.cli.actor import cli_actor
from issuance.cli.imports import import_orders
from issuance.domain.errors import DomainError
from issuance.domain.statuses import ProductionStatus
from issuance.platform import Platform
from issuance.services import workflow
from issuance.services.workflow import Action
from issuance.settings import Settings

orders_app = typer.Typer(
    help="List orders and drive them through production.", no_args_is_help=True
)
stock_app = typer.Typer(help="Stock levels at the personalization centres.", no_args_is_help=True)
out, err = Console(), Console(stderr=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _platform() -> Platform:
    return Platform.build(Settings())


def _fail(error: DomainError) -> None:
    err.print(f"[red]{error.code}[/red] {error.field + ': ' if error.field else ''}{error.message}")
    raise typer.Exit(code=1)


@orders_app.command("list")
def list_orders(
    status: Annotated[
        list[ProductionStatus] | None, typer.Option(help="details.status (repeatable).")
    ] = None,
    issuer: Annotated[str | None, typer.Option(help="Only this issuer.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Orders, most recently changed first."""
    platform = _platform()
    try:
        with platform.reader() as uow:
            statuses = tuple(s.value for s in status or ())
            orders = [
                (o.issuer_id, o.operation())
                for o in uow.orders.search(issuer_id=issuer, statuses=statuses, limit=limit)
            ]
    finally:
        platform.close()
    if as_json:
        typer.echo(json.dumps([{"issuerId": i, **op} for i, op in orders], indent=2))
        return
    table = Table("issuer", "card", "status", "details.status", "due", "hold", "shipment", "batch")
    for issuer_id, op in orders:
        details: dict[str, Any] = op["details"]
        table.add_row(
            issuer_id,
            op["cardId"],
            op["status"],
            details["status"],
            details.get("dueDate", ""),
            details.get("onHold", ""),
            details.get("shipment", {}).get("status", ""),
            details.get("productionBatch", ""),
        )
    out.print(table if orders else "[yellow]no order matches[/yellow]")


@orders_app.command("advance")
def advance(
    issuer: Annotated[str, typer.Argument(help="Issuer id, e.g. DEMOBANK01.")],
    card: Annotated[str, typer.Argument(help="Card id.")],
    action: Annotated[Action, typer.Argument(help="What to do.")],
    reason: Annotated[str | None, typer.Option(help="Why (shown as details.reason).")] = None,
    error_code: Annotated[str | None, typer.Option(help="errorCode for fail / exception.")] = None,
    carrier: Annotated[
        str | None, typer.Option(help="Carrier code for ship (default: the order's).")
    ] = None,
    tracking_number: Annotated[str | None, typer.Option(help="Tracking number for ship.")] = None,
    tracking_url: Annotated[str | None, typer.Option(help="Tracking URL for ship.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Apply ACTION to the card's current order and show the operation afterwards."""
    platform = _platform()
    try:
        operation = workflow.perform(
            action,
            issuer_id=issuer,
            card_id=card,
            uow=platform.uow(),
            clock=platform.clock,
            reason=reason,
            error_code=error_code,
            carrier=carrier,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
            actor=cli_actor(),
        )
    except DomainError as error:
        _fail(error)
        return
    finally:
        platform.close()
    if as_json:
        typer.echo(json.dumps(operation, indent=2))
    else:
        out.print(f"{card}: [bold]{operation['details']['status']}[/bold] ({operation['status']})")


orders_app.command("import")(import_orders)


@orders_app.command("batch")
def batch(as_json: JsonOption = False) -> None:
    """Put every prepared order in a production batch now (as after a cut-off)."""
    platform = _platform()
    try:
        batches = workflow.batch_production(
            uow=platform.uow(), clock=platform.clock, actor=cli_actor()
        )
    finally:
        platform.close()
    if as_json:
        typer.echo(json.dumps(batches, indent=2))
        return
    for name, cards in batches.items():
        out.print(f"{name}: {len(cards)} card(s)")
    if not batches:
        out.print("[yellow]nothing to batch[/yellow]")


@stock_app.command("show")
def show_stock(issuer: str, as_json: JsonOption = False) -> None:
    """Units left of each stock item of ISSUER."""
    platform = _platform()
    try:
        with platform.reader() as uow:
            levels = uow.stock.levels(issuer)
    finally:
        platform.close()
    if as_json:
        typer.echo(json.dumps(levels, indent=2))
        return
    table = Table("stock item", "units")
    for item, quantity in levels.items():
        table.add_row(item, str(quantity))
    out.print(table)


@stock_app.command("replenish")
def replenish(issuer: str, item: str, quantity: int, as_json: JsonOption = False) -> None:
    """Add QUANTITY units of ITEM; orders waiting for it resume."""
    platform = _platform()
    try:
        level, resumed = workflow.replenish(
            issuer, item, quantity, uow=platform.uow(), clock=platform.clock, actor=cli_actor()
        )
    except DomainError as error:
        _fail(error)
        return
    finally:
        platform.close()
    if as_json:
        typer.echo(json.dumps({"quantity": level, "resumedCardIds": resumed}))
    else:
        out.print(f"{item}: {level} unit(s); {len(resumed)} order(s) resumed")

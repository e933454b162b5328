"""`issuance containers …`: BULK containers on the command line (the operator API's services)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from issuance.cli.actor import cli_actor
from issuance.domain.containers import ContainerStatus
from issuance.domain.errors import DomainError
from issuance.platform import Platform
from issuance.services import containers
from issuance.settings import Settings

containers_app = typer.Typer(
    help="BULK containers: list, show, ship, track, receive, hand over.", no_args_is_help=True
)
out, err = Console(), Console(stderr=True)
Issuer = Annotated[str, typer.Argument(help="Issuer id, e.g. DEMOBANK01.")]
Group = Annotated[str, typer.Argument(help="shipment.groupId of the container.")]
Message = Annotated[str | None, typer.Option(help="A note shown on each card's shipment.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _run(call: Callable[[Platform], dict[str, Any]], *, as_json: bool) -> None:
    """Run one service call on a platform built from the environment, print its answer."""
    platform = Platform.build(Settings())
    try:
        answer = call(platform)
    except DomainError as error:
        err.print(
            f"[red]{error.code}[/red] {error.field + ': ' if error.field else ''}{error.message}"
        )
        raise typer.Exit(code=1) from None
    finally:
        platform.close()
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
    elif "containers" in answer:
        _print_list(answer["containers"])
    else:
        _print_container(answer)


def _print_list(found: list[dict[str, Any]]) -> None:
    table = Table("groupId", "orderId", "status", "cards", "carrier", "tracking", "updated")
    for c in found:
        table.add_row(
            c["groupId"],
            c.get("orderId", ""),
            c["status"],
            str(c["cardCount"]),
            c.get("carrier", ""),
            c.get("trackingNumber", ""),
            c.get("updatedAt", ""),
        )
    out.print(table if found else "[yellow]no container matches[/yellow]")


def _print_container(answer: dict[str, Any]) -> None:
    if "operationId" in answer:  # a card's operation (hand-over)
        handed = answer["details"]["container"].get("handedToCardholderAt", "")
        out.print(f"{answer['cardId']}: handed to its cardholder at {handed}")
        return
    tracking = " ".join(answer.get(k, "") for k in ("carrier", "trackingNumber"))
    out.print(
        f"{answer['groupId']} ({answer.get('orderId', 'no orderId')}): [bold]{answer['status']}[/bold] {tracking}"
    )
    if "movedCardIds" in answer:
        out.print(f"{len(answer['movedCardIds'])} card(s) moved with it")
    if "cards" in answer:
        table = Table("card", "status", "details.status", "shipment", "hold", "handed over")
        for card in answer["cards"]:
            table.add_row(
                card["cardId"],
                card["status"],
                card["productionStatus"],
                card.get("shipmentStatus", ""),
                card.get("onHold", ""),
                card.get("handedToCardholderAt", ""),
            )
        out.print(table)


@containers_app.command("list")
def list_containers(
    issuer: Issuer,
    status: Annotated[
        list[ContainerStatus] | None, typer.Option(help="Status (repeatable).")
    ] = None,
    order_id: Annotated[str | None, typer.Option(help="Only this second-level container.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOption = False,
) -> None:
    """The issuer's containers, most recently changed first."""
    statuses = tuple(s.value for s in status or ())
    _run(
        lambda p: {
            "containers": containers.list_containers(
                issuer_id=issuer, uow=p.reader(), statuses=statuses, order_id=order_id, limit=limit
            )
        },
        as_json=as_json,
    )


@containers_app.command("show")
def show(issuer: Issuer, group: Group, as_json: JsonOption = False) -> None:
    """A container, its tracking and its manifest."""
    _run(
        lambda p: containers.manifest(issuer_id=issuer, group_id=group, uow=p.reader()),
        as_json=as_json,
    )


@containers_app.command("ship")
def ship(
    issuer: Issuer,
    group: Group,
    carrier: Annotated[str | None, typer.Option(help="Carrier code (default: the cards').")] = None,
    tracking_number: Annotated[str | None, typer.Option(help="Tracking number.")] = None,
    tracking_url: Annotated[str | None, typer.Option(help="Tracking URL.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Ship the container: every card in it becomes CARD_SHIPPED with its tracking."""
    _run(
        lambda p: containers.ship(
            issuer_id=issuer,
            group_id=group,
            carrier=carrier,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
            uow=p.uow(),
            clock=p.clock,
            actor=cli_actor(),
        ),
        as_json=as_json,
    )


@containers_app.command("track")
def track(
    issuer: Issuer,
    group: Group,
    status: Annotated[ContainerStatus, typer.Argument(help="UNDELIVERABLE or RETURNED.")],
    message: Message = None,
    as_json: JsonOption = False,
) -> None:
    """Record a carrier's report for the container and each card in it."""
    _run(
        lambda p: containers.track(
            status,
            issuer_id=issuer,
            group_id=group,
            message=message,
            uow=p.uow(),
            clock=p.clock,
            actor=cli_actor(),
        ),
        as_json=as_json,
    )


@containers_app.command("receive")
def receive(
    issuer: Issuer, group: Group, message: Message = None, as_json: JsonOption = False
) -> None:
    """The branch received the container: each card in it is DELIVERED."""
    _run(
        lambda p: containers.receive(
            issuer_id=issuer,
            group_id=group,
            message=message,
            uow=p.uow(),
            clock=p.clock,
            actor=cli_actor(),
        ),
        as_json=as_json,
    )


@containers_app.command("hand-over")
def hand_over(
    issuer: Issuer,
    group: Group,
    card: Annotated[str, typer.Argument(help="Card id.")],
    as_json: JsonOption = False,
) -> None:
    """The branch handed CARD to its cardholder."""
    _run(
        lambda p: containers.hand_over(
            issuer_id=issuer,
            group_id=group,
            card_id=card,
            uow=p.uow(),
            clock=p.clock,
            actor=cli_actor(),
        ),
        as_json=as_json,
    )

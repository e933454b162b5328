"""`issuance notifications list / replay / recover / endpoints / enable / ping`: see and resend
what issuers were told, and check their endpoints."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from issuance.cli.actor import audit_command
from issuance.db.delivery_log import find_deliveries
from issuance.db.endpoint_health import streaks
from issuance.db.outbox import (
    DeliveryStatus,
    disabled_endpoints,
    enable_endpoint,
    replay,
)
from issuance.delivery.ping import ping
from issuance.domain.audit import AuditAction
from issuance.domain.endpoint_health import Streak
from issuance.domain.errors import NotFound
from issuance.platform import Platform
from issuance.services.endpoints import configured_endpoint, configured_endpoints
from issuance.settings import Settings

notifications_app = typer.Typer(
    help="Notification deliveries to issuer endpoints.", no_args_is_help=True
)
out, err = Console(), Console(stderr=True)


def _platform() -> Platform:
    return Platform.build(Settings())


@notifications_app.command("list")
def list_command(
    status: Annotated[
        DeliveryStatus | None, typer.Option(help="Only deliveries in this state.")
    ] = None,
    issuer: Annotated[str | None, typer.Option(help="Only this issuer.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Deliveries, newest first: event, card, sequence, state, attempts, last answer."""
    platform = _platform()
    try:
        views = find_deliveries(
            platform.engine, status=status.value if status else None, issuer_id=issuer, limit=limit
        )
    finally:
        platform.close()
    if as_json:
        typer.echo(json.dumps([asdict(v) for v in views], default=str, indent=2))
        return
    table = Table("event", "issuer", "endpoint", "card", "seq", "status", "attempts", "last")
    for v in views:
        last = str(v.last_status_code) if v.last_status_code is not None else (v.last_error or "")
        table.add_row(
            str(v.event_id),
            v.issuer_id,
            v.endpoint_id,
            v.card_id,
            str(v.sequence),
            v.status,
            str(v.attempts),
            last,
        )
    out.print(table if views else "[yellow]no delivery matches[/yellow]")


@notifications_app.command("replay")
def replay_command(
    event_ids: Annotated[list[int], typer.Argument(help="Event ids (see list).")],
) -> None:
    """Send these events again to every endpoint they were for."""
    platform = _platform()
    try:
        count = replay(platform.engine, event_ids=event_ids, now=platform.clock())
        audit_command(platform.uow, AuditAction.NOTIFICATIONS_REPLAYED, f"deliveries={count}")
    finally:
        platform.close()
    err.print(f"{count} delivery(ies) due again")


@notifications_app.command("recover")
def recover_command(
    since: Annotated[
        datetime, typer.Option(help="ISO time: resend every event recorded since then.")
    ],
) -> None:
    """Resend everything since a moment (a receiver lost its data)."""
    moment = since if since.tzinfo else since.replace(tzinfo=UTC)
    platform = _platform()
    try:
        count = replay(platform.engine, since=moment, now=platform.clock())
        audit_command(platform.uow, AuditAction.NOTIFICATIONS_RECOVERED, f"deliveries={count}")
    finally:
        platform.close()
    err.print(f"{count} delivery(ies) due again")


@notifications_app.command("endpoints")
def endpoints_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every configured endpoint: enabled or not, and its failure streak."""
    platform = _platform()
    try:
        configured = configured_endpoints(uow=platform.reader())
        disabled = {(i, e): (at, why) for i, e, at, why in disabled_endpoints(platform.engine)}
        health = streaks(platform.engine)
    finally:
        platform.close()
    table = Table("issuer", "endpoint", "state", "failures", "failing since", "why disabled")
    rows: list[dict[str, object]] = []
    for issuer_id, endpoint in configured:
        key = (issuer_id, endpoint.endpoint_id)
        since, why = disabled.get(key, (None, ""))
        streak = health.get(key, Streak())
        failing = streak.failing_since.isoformat() if streak.failing_since else ""
        state = "disabled" if key in disabled else "warned" if streak.warned_at else "enabled"
        if as_json:
            rows.append(
                {
                    "issuerId": issuer_id,
                    "endpointId": endpoint.endpoint_id,
                    "state": state,
                    "consecutiveFailures": streak.consecutive_failures,
                    "failingSince": failing or None,
                    "disabledAt": since.isoformat() if since else None,
                    "reason": why or None,
                }
            )
            continue
        table.add_row(*key, state, str(streak.consecutive_failures), failing, why)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        out.print(table)


@notifications_app.command("enable")
def enable_command(issuer: str, endpoint: str) -> None:
    """Resume delivery to ENDPOINT of ISSUER after a 410 Gone or a long failure streak."""
    platform = _platform()
    try:
        enabled = enable_endpoint(
            platform.engine, issuer_id=issuer, endpoint_id=endpoint, at=platform.clock()
        )
        detail = f"endpoint={endpoint};wasDisabled={enabled}"
        audit_command(platform.uow, AuditAction.ENDPOINT_ENABLED, detail, issuer_id=issuer)
    finally:
        platform.close()
    err.print(
        f"{issuer}/{endpoint} enabled" if enabled else f"{issuer}/{endpoint} was not disabled"
    )


@notifications_app.command("ping")
def ping_command(
    issuer: str,
    endpoint: str,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Send a signed empty notification, {"operations": []}, to ENDPOINT of ISSUER now.

    Exits 0 when it answered 2xx, 1 otherwise (2 when no such endpoint is configured).
    """
    platform = _platform()
    try:
        target = configured_endpoint(issuer, endpoint, uow=platform.reader())
    except NotFound as error:
        err.print(f"[red]{error.message}[/red]")
        raise typer.Exit(2) from None
    finally:
        platform.close()
    result = ping(target, issuer_id=issuer)
    answer = {
        "ok": result.ok,
        "statusCode": result.status_code,
        "latencyMs": round(result.latency_ms, 1),
        "error": result.error,
        "messageId": result.message_id,
    }
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
    else:
        what = escape(str(result.status_code or result.error))
        colour = "green" if result.ok else "red"
        out.print(f"[{colour}]{issuer}/{endpoint}: {what}[/{colour}] in {result.latency_ms:.0f} ms")
    if not result.ok:
        raise typer.Exit(1)

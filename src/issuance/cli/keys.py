"""`issuance keys …`: list the keys, rotate them, re-wrap data keys, retire old master keys.

Rotations change the key files under ISSUANCE_KEYS_DIR; running servers and workers re-read
them within a second, so nothing restarts. Each one is audited.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from issuance.cli.actor import audit_command
from issuance.db.engine import make_engine
from issuance.db.sensitive import rewrap_all, wrapped_by, wrapped_counts
from issuance.db.unit_of_work import unit_of_work_factory
from issuance.domain.audit import AuditAction
from issuance.security import envelope
from issuance.security.key_rotation import (
    RotationRefused,
    describe,
    retire_master,
    rotate_jwe,
    rotate_master,
)
from issuance.security.keys import load_key_ring
from issuance.services.intake import sealing_context
from issuance.settings import Settings

keys_app = typer.Typer(help="Encryption keys: list, rotate, re-wrap, retire.", no_args_is_help=True)
out, err = Console(), Console(stderr=True)


def _master_key(settings: Settings) -> str | None:
    return settings.master_key.get_secret_value() if settings.master_key else None


def _audit(settings: Settings, action: AuditAction, detail: str) -> None:
    engine = make_engine(settings.database_url)
    try:
        audit_command(unit_of_work_factory(engine), action, detail)
    finally:
        engine.dispose()


def _refused(error: RotationRefused) -> None:
    err.print(f"[red]refused[/red]: {error}")
    raise typer.Exit(code=1)


@keys_app.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every JWE and master key with its role, and how many orders each master key wraps."""
    settings = Settings()
    try:
        infos = describe(settings.keys_dir, master_key=_master_key(settings))
    except RotationRefused as error:
        _refused(error)
        return
    engine = make_engine(settings.database_url)
    try:
        counts = wrapped_counts(engine)
    finally:
        engine.dispose()
    rows = [
        {**asdict(info), "orders": counts.get(info.kid, 0) if info.kind == "MASTER" else None}
        for info in infos
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("kind", "kid", "role", "source", "orders wrapped")
    for row in rows:
        orders = "" if row["orders"] is None else str(row["orders"])
        table.add_row(row["kind"], row["kid"], row["role"], row["source"], orders)
    out.print(table)


@keys_app.command("rotate-jwe")
def rotate_jwe_key() -> None:
    """Add a JWE key that issuers encrypt for from now on; the previous one stays active."""
    settings = Settings()
    try:
        rotation = rotate_jwe(settings.keys_dir)
    except RotationRefused as error:
        _refused(error)
        return
    retired = ",".join(rotation.retired) or "none"
    _audit(settings, AuditAction.JWE_KEY_ROTATED, f"kid={rotation.new_kid};retired={retired}")
    err.print(
        f"[green]new JWE key[/green] {rotation.new_kid}; active: {', '.join(rotation.active)}"
    )
    if rotation.retired:
        err.print(f"retired (no longer accepted): {retired}")


def _rewrap(settings: Settings) -> int:
    ring = load_key_ring(settings.keys_dir, generate=False, master_key=_master_key(settings))
    masters = ring.master_keys
    engine = make_engine(settings.database_url)
    try:
        return rewrap_all(
            engine,
            current_key_id=masters.wrapping_key_id,
            rewrap=lambda blob, context, legacy: envelope.rewrap(
                blob, masters=masters, context=context, legacy_key_id=legacy
            ),
            context_of=sealing_context,
        )
    finally:
        engine.dispose()


@keys_app.command("rotate-master")
def rotate_master_key(
    rewrap: Annotated[bool, typer.Option(help="Re-wrap every data key now.")] = True,
) -> None:
    """Add a master key that wraps new data keys, then re-wrap the existing ones under it."""
    settings = Settings()
    try:
        kid = rotate_master(settings.keys_dir, master_key=_master_key(settings))
    except RotationRefused as error:
        _refused(error)
        return
    _audit(settings, AuditAction.MASTER_KEY_ROTATED, f"kid={kid}")
    err.print(f"[green]new master key[/green] {kid}")
    if rewrap:
        rewrap_data_keys()


@keys_app.command("rewrap")
def rewrap_data_keys() -> None:
    """Re-wrap every data key not yet under the current master key (safe to run again)."""
    settings = Settings()
    count = _rewrap(settings)
    _audit(settings, AuditAction.DATA_KEYS_REWRAPPED, f"count={count}")
    err.print(f"[green]{count} data key(s) re-wrapped[/green]; retire old master keys with ")
    err.print("`issuance keys retire-master KID` once every process has picked up the new one")


@keys_app.command("retire-master")
def retire_master_key(kid: Annotated[str, typer.Argument(help="The master key id.")]) -> None:
    """Remove an old master key; refused while any data key is still wrapped by it."""
    settings = Settings()
    engine = make_engine(settings.database_url)
    try:
        still = wrapped_by(engine, key_id=kid)
    finally:
        engine.dispose()
    try:
        retire_master(settings.keys_dir, kid, still_wrapped=still)
    except RotationRefused as error:
        _refused(error)
        return
    _audit(settings, AuditAction.MASTER_KEY_RETIRED, f"kid={kid}")
    err.print(f"[green]master key {kid} retired[/green]")

"""`issuance batches …`: production batch files for the machines, and the bureau's report.

    issuance batches list [--json]
    issuance batches export NAME --out FILE      card data encrypted for the centre's key
    issuance batches report FILE [--json] [--report OUT]

No command prints card data: the export writes it only inside JWEs for the centre.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from issuance.api.errors import schema_problems
from issuance.cli.actor import cli_actor
from issuance.db.batches import list_batches
from issuance.domain.errors import DomainError, Problem
from issuance.platform import Platform
from issuance.security.centre_keys import centre_keys
from issuance.security.keys import write_private
from issuance.services import order_files
from issuance.services.export import export_batch_file
from issuance.services.order_files import BadHeader, FileFormat
from issuance.services.production_reports import LineResult, ReportImporter, ReportSummary
from issuance.settings import Settings

batches_app = typer.Typer(
    help="Production batch files and the bureau's production report.", no_args_is_help=True
)
err = Console(stderr=True)


def _problems(error: ValidationError) -> list[Problem]:
    return schema_problems([dict(e) for e in error.errors(include_input=False)])


def _fail(error: DomainError) -> typer.Exit:
    where = f" ({error.field})" if error.field else ""
    err.print(f"[red]{error.code}[/red]{where}: {error.message}")
    return typer.Exit(code=1)


@batches_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """Production batches, newest first: centre, product, cards per step, cards with data."""
    platform = Platform.build(Settings())
    try:
        batches = list_batches(platform.engine, limit=limit)
    finally:
        platform.close()
    if as_json:
        typer.echo(json.dumps({"batches": [b.as_dict() for b in batches]}))
        return
    table = Table("batch", "centre", "product", "cards", "with data", "steps")
    for b in batches:
        steps = ", ".join(f"{status} {n}" for status, n in sorted(b.by_status.items()))
        row = (b.name, b.centre_id or "", b.card_product_id or "", str(b.cards))
        table.add_row(*row, str(b.with_card_data), steps)
    Console().print(table if batches else "[yellow]no production batch yet[/yellow]")


@batches_app.command("export")
def export_command(
    name: Annotated[str, typer.Argument(help="The batch name (details.productionBatch).")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="The file to write.")],
) -> None:
    """Write batch NAME for its centre's machines (JSON Lines; docs/production-files.md)."""
    platform = Platform.build(Settings())
    settings = platform.settings
    try:
        batch = export_batch_file(
            name,
            uow=platform.uow(),
            masters=platform.keys.master_keys,
            centre_key=centre_keys(settings.keys_dir, generate=settings.sandbox),
            clock=platform.clock,
            actor=cli_actor(),
        )
    except DomainError as error:
        raise _fail(error) from None
    finally:
        platform.close()
    write_private(out, "".join(batch.lines()), replace=True)  # owner-only, written atomically
    header = batch.header
    err.print(
        f"[green]exported[/green] {header['count']} card(s) of {name} for {header['centreId']} "
        f"(key {header['keyId']}) to {out}"
    )


@batches_app.command("report")
def report_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The report file.")],
    fmt: Annotated[
        FileFormat | None,
        typer.Option("--format", help="csv or jsonl (default: from the file's extension)."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Per-line results (default: FILE.result.jsonl).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Lines per commit.")] = 500,
) -> None:
    """Apply the bureau's production / shipment report; importing it again changes nothing."""
    file_format = fmt or (FileFormat.CSV if file.suffix.lower() == ".csv" else FileFormat.JSONL)
    result_path = report or file.with_name(file.name + ".result.jsonl")
    platform = Platform.build(Settings())
    importer = ReportImporter(
        report_name=file.name,
        uow=platform.uow,
        clock=platform.clock,
        actor=cli_actor(),
        schema_problems=_problems,
        batch_size=batch_size,
    )
    try:
        with file.open("rb") as stream, result_path.open("w") as out:
            summary = _run(importer, stream, file_format, out, show=not as_json)
    except BadHeader as error:
        err.print(f"[red]FILE_INVALID_HEADER[/red] {error}")
        raise typer.Exit(code=1) from None
    finally:
        platform.close()
    totals = summary.as_dict()
    if as_json:
        typer.echo(json.dumps({**totals, "report": str(result_path)}))
    else:
        err.print(
            f"{totals['lines']} line(s): [green]{totals['applied']} applied[/green], "
            f"{totals['alreadyApplied']} already applied, [red]{totals['refused']} refused[/red] "
            f"in {totals['seconds']} s; results in {result_path}"
        )


def _run(
    importer: ReportImporter, stream: IO[bytes], fmt: FileFormat, out: IO[str], *, show: bool
) -> ReportSummary:
    read = order_files.Progress()
    size = Path(stream.name).stat().st_size
    columns = (
        TextColumn("[bold]report[/bold]"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[lines]} lines"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, disable=not show or not err.is_terminal) as bar:
        task = bar.add_task("report", total=size or 1, lines=0)
        done = [0]

        def on_batch(results: list[LineResult]) -> None:
            for result in results:
                out.write(json.dumps(result.as_dict()) + "\n")
            out.flush()
            done[0] += len(results)
            bar.update(task, completed=read.bytes_read, lines=done[0])

        return importer.run(order_files.records(stream, fmt, read), on_batch)

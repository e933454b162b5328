"""`issuance orders import FILE`: order cards from a CSV or JSON Lines file.

The file is streamed; the report is written as each batch commits, so after a crash it holds
exactly the lines whose outcome is durable, and re-running the same file finishes the job
(lines already placed come back as REPLAYED).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from issuance.api.errors import schema_problems
from issuance.cli.actor import cli_actor
from issuance.domain.errors import Problem
from issuance.platform import Platform
from issuance.services import order_files
from issuance.services.importing import Importer, LineReport, Summary
from issuance.services.order_files import BadHeader, FileFormat
from issuance.settings import Settings

err = Console(stderr=True)
REPORT_FIELDS = ("line", "cardId", "result", "operationId", "errorCode", "field")


def _problems(error: ValidationError) -> list[Problem]:
    return schema_problems([dict(e) for e in error.errors(include_input=False)])


def import_orders(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The order file.")],
    fmt: Annotated[
        FileFormat | None,
        typer.Option("--format", help="csv or jsonl (default: from the file's extension)."),
    ] = None,
    issuer: Annotated[
        str | None, typer.Option(help="Issuer id (default: the only issuer configured).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Per-line report; .csv or .jsonl (default: FILE.report.jsonl)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Orders per commit.")] = 1000,
    workers: Annotated[
        int, typer.Option(min=0, max=32, help="Processes decrypting ahead of the writer (0: none).")
    ] = 0,
) -> None:
    """Order every card of FILE; re-run it safely after an error or an interruption."""
    file_format = fmt or (FileFormat.CSV if file.suffix.lower() == ".csv" else FileFormat.JSONL)
    report_path = report or file.with_name(file.name + ".report.jsonl")
    platform = Platform.build(Settings())
    try:
        importer = Importer(
            issuer_id=issuer or _only_issuer(platform),
            file_name=file.name,
            uow=platform.uow,
            keys=platform.intake_keys,
            clock=platform.clock,
            new_id=platform.new_id,
            actor=cli_actor(),
            schema_problems=_problems,
            batch_size=batch_size,
            bulk=platform.bulk,
            workers=workers,
        )
        with file.open("rb") as stream, report_path.open("w", newline="") as out:
            summary = _run(importer, stream, file_format, out, show=not as_json)
    except BadHeader as error:
        err.print(f"[red]FILE_INVALID_HEADER[/red] {error}")
        raise typer.Exit(code=1) from None
    finally:
        platform.close()
    totals = summary.as_dict()
    if as_json:
        typer.echo(json.dumps({**totals, "report": str(report_path)}))
    else:
        err.print(
            f"{totals['lines']} line(s): [green]{totals['accepted']} accepted[/green], "
            f"{totals['replayed']} replayed, [red]{totals['refused']} refused[/red] "
            f"in {totals['seconds']} s ({totals['cardsPerSecond']} cards/s); report {report_path}"
        )


def _only_issuer(platform: Platform) -> str:
    with platform.reader() as uow:
        config = uow.config.current()
    issuers = [i.issuer_id for i in config.issuers] if config else []
    if len(issuers) != 1:
        err.print("[red]ISSUER_REQUIRED[/red] --issuer: several (or no) issuers are configured")
        raise typer.Exit(code=2)
    return issuers[0]


def _run(
    importer: Importer, stream: IO[bytes], fmt: FileFormat, out: IO[str], *, show: bool
) -> Summary:
    write = _writer(out, csv_report=out.name.endswith(".csv"))
    read = order_files.Progress()
    size = Path(stream.name).stat().st_size
    records = order_files.records(stream, fmt, read)
    columns = (
        TextColumn("[bold]import[/bold]"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[lines]} lines · {task.fields[rate]} cards/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, disable=not show or not err.is_terminal) as bar:
        task = bar.add_task("import", total=size or 1, lines=0, rate="-")
        done = [0]

        def on_batch(reports: list[LineReport]) -> None:
            for line in reports:
                write(line)
            out.flush()
            done[0] += len(reports)
            rate = done[0] / max(bar.tasks[0].elapsed or 1e-9, 1e-9)
            bar.update(task, completed=read.bytes_read, lines=done[0], rate=f"{rate:.0f}")

        return importer.run(records, on_batch)


def _writer(out: IO[str], *, csv_report: bool) -> Any:
    if csv_report:
        rows = csv.DictWriter(out, fieldnames=REPORT_FIELDS)
        rows.writeheader()
        return lambda line: rows.writerow(_row(line))
    return lambda line: out.write(
        json.dumps({k: v for k, v in _row(line).items() if v is not None}) + "\n"
    )


def _row(line: LineReport) -> dict[str, Any]:
    return {
        "line": line.line,
        "cardId": line.card_id,
        "result": line.result.value,
        "operationId": line.operation_id,
        "errorCode": line.error_code,
        "field": line.field,
    }

"""Extension: upload an order file (CSV or JSON Lines) and follow its import.

The body is streamed to disk (the request middleware leaves it alone on this path) with its own
size limit, `ISSUANCE_MAX_UPLOAD_BYTES`; the import runs in the background (services/
order_uploads.py) through the same checks as the batch API and `issuance orders import`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from issuance.api.deps import CurrentIssuer, PlatformDep
from issuance.api.errors import schema_problems
from issuance.contract.operations import ErrorBody
from issuance.contract.order_files import ImportAccepted, OrderFileImport, ReportRow
from issuance.db.order_imports import SqlOrderImports
from issuance.domain.audit import Actor, ActorKind
from issuance.domain.errors import InvalidRequest, Problem
from issuance.platform import Platform
from issuance.services.import_runs import BATCH_SIZE, ImportRunner, ImportThread
from issuance.services.importing import Importer
from issuance.services.order_files import FileFormat
from issuance.services.order_uploads import REPORT_FIELDS, ImportJob, Uploads

PREFIX = "/banking/v1/issuers/{issuerId}/orderFiles"
STREAMED_PATHS = re.compile(r"/banking/v1/issuers/[^/]+/orderFiles")  # POST bodies not buffered
FORMATS = {
    "text/csv": FileFormat.CSV,
    "application/x-ndjson": FileFormat.JSONL,
    "application/jsonl": FileFormat.JSONL,
    "application/x-jsonlines": FileFormat.JSONL,
}
router = APIRouter(prefix=PREFIX, tags=["Order files (extension)"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Unknown content type, bad file name or CSV header"},
    401: {"model": ErrorBody, "description": "Missing, invalid or expired access token"},
    403: {"model": ErrorBody, "description": "The token belongs to another issuer"},
    404: {"model": ErrorBody, "description": "No such import for this issuer"},
    413: {"model": ErrorBody, "description": "The file exceeds the upload limit"},
}
FileName = Annotated[
    str,
    Query(
        alias="fileName",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
        description="The file's name, recorded as the orders' `inputFileName`",
    ),
]
ImportIdPath = Annotated[str, Path(alias="importId", pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def uploads_of(platform: Platform) -> Uploads:
    return Uploads(
        directory=platform.settings.order_files_directory,
        store=SqlOrderImports(platform.engine),
        clock=platform.clock,
        new_id=platform.new_id,
        keep_reports=timedelta(days=platform.settings.import_report_days),
    )


def import_thread(platform: Platform) -> ImportThread:
    """The thread that runs uploaded imports in this process (started by the app's lifespan)."""

    def importer_for(job: ImportJob) -> Importer:
        return Importer(
            issuer_id=job.issuer_id,
            file_name=job.file_name,
            uow=platform.uow,
            keys=platform.intake_keys,
            clock=platform.clock,
            new_id=platform.new_id,
            actor=Actor(ActorKind.ISSUER, job.actor_id, job.issuer_id),
            schema_problems=_problems,
            batch_size=BATCH_SIZE,
            bulk=platform.bulk,
        )

    return ImportThread(ImportRunner(uploads_of(platform), importer_for))


def _problems(error: ValidationError) -> list[Problem]:
    return schema_problems([dict(e) for e in error.errors(include_input=False)])


def _too_large(limit: int) -> JSONResponse:
    body = {
        "errorCode": "PAYLOAD_TOO_LARGE",
        "error": f"body: the file exceeds {limit} bytes",
        "field": "body",
    }
    return JSONResponse(body, status_code=413)


def _format(request: Request) -> FileFormat:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = FORMATS.get(content_type)
    if fmt is None:
        raise InvalidRequest(
            f"must be one of {', '.join(FORMATS)}",
            field="Content-Type",
            code="UNSUPPORTED_CONTENT_TYPE",
        )
    return fmt


@router.post(
    "",
    summary="Extension: upload an order file (CSV or JSON Lines) to import",
    status_code=202,
    responses={202: {"model": ImportAccepted}, **ERRORS},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}} for media in FORMATS
            },
        }
    },
)
async def upload_order_file(
    request: Request, issuer: CurrentIssuer, platform: PlatformDep, file_name: FileName
) -> JSONResponse:
    """Keep the file and queue its import: `202 {"importId", "status"}`; follow it with GET."""
    fmt = _format(request)
    limit = platform.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    uploads = uploads_of(platform)
    scratch = uploads.scratch()
    size = 0
    try:
        with scratch.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    break
                out.write(chunk)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    if size > limit:
        scratch.unlink(missing_ok=True)
        return _too_large(limit)
    job = await run_in_threadpool(
        uploads.accept,
        scratch,
        issuer_id=issuer.issuer_id,
        file_name=file_name,
        fmt=fmt,
        actor_id=issuer.client_id,
    )
    thread: ImportThread | None = getattr(request.app.state, "import_thread", None)
    if thread is not None:
        thread.wake()
    location = f"{request.url.path}/{job.import_id}"
    body = {"importId": job.import_id, "status": job.status.value}
    return JSONResponse(body, status_code=202, headers={"Location": location})


@router.get(
    "/{importId}",
    summary="Extension: an order file import's status",
    responses={200: {"model": OrderFileImport}, **ERRORS},
)
def order_file_import(
    issuer: CurrentIssuer, platform: PlatformDep, import_id: ImportIdPath
) -> dict[str, Any]:
    """Status, counts (accepted, replayed, refused) and progress (bytes read / file size)."""
    return uploads_of(platform).get(issuer.issuer_id, import_id).as_wire()


@router.get(
    "/{importId}/report",
    summary="Extension: an order file import's per-line report (JSON Lines or CSV)",
    responses={
        **ERRORS,
        410: {
            "model": ErrorBody,
            "description": "The report was deleted (`ISSUANCE_IMPORT_REPORT_DAYS` after the end)",
        },
        200: {
            "model": ReportRow,
            "description": "One row per line (JSON Lines; CSV with `Accept: text/csv`)",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        },
    },
)
def order_file_report(
    request: Request, issuer: CurrentIssuer, platform: PlatformDep, import_id: ImportIdPath
) -> StreamingResponse:
    """One row per line so far: line, cardId, result, operationId, errorCode, field."""
    rows = uploads_of(platform).report(issuer.issuer_id, import_id)
    if "text/csv" in request.headers.get("accept", ""):
        return StreamingResponse(_csv(rows), media_type="text/csv")
    lines = (json.dumps(row) + "\n" for row in rows)
    return StreamingResponse(lines, media_type="application/x-ndjson")


def _csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()

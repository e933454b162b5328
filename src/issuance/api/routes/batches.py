"""Production batch files and the bureau's report over HTTP (`/operator/v1`), for operators.

The file is the one `issuance batches export` writes (docs/production-files.md): card data only
as JWEs for the centre's key. The report upload is `issuance batches report` for a body.
"""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError

from issuance.api.deps import CurrentOperator, PlatformDep, actor_of
from issuance.api.errors import schema_problems
from issuance.db.batches import list_batches
from issuance.domain.errors import InvalidRequest, Problem
from issuance.security.centre_keys import centre_keys
from issuance.services import order_files
from issuance.services.export import export_batch_file
from issuance.services.order_files import BadHeader, FileFormat
from issuance.services.production_reports import LineResult, ReportImporter

router = APIRouter(prefix="/operator/v1", tags=["Operator"])
BatchName = Annotated[str, Path(alias="name", pattern=r"^[A-Za-z0-9_.-]{1,255}$")]
REPORT_TYPES = {"text/csv": FileFormat.CSV, "application/jsonl": FileFormat.JSONL}


def _problems(error: ValidationError) -> list[Problem]:
    return schema_problems([dict(e) for e in error.errors(include_input=False)])


@router.get("/batches", summary="Production batches, newest first")
def batches(
    _operator: CurrentOperator,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    return {"batches": [b.as_dict() for b in list_batches(platform.engine, limit=limit)]}


@router.get(
    "/batches/{name}/file",
    summary="The batch's file for its centre's machines (JSON Lines, card data as JWEs)",
    response_class=Response,
)
def batch_file(operator: CurrentOperator, name: BatchName, platform: PlatformDep) -> Response:
    settings = platform.settings
    batch = export_batch_file(
        name,
        uow=platform.uow(),
        masters=platform.keys.master_keys,
        centre_key=centre_keys(settings.keys_dir, generate=settings.sandbox),
        clock=platform.clock,
        actor=actor_of(operator),
    )
    return Response(
        "".join(batch.lines()),
        media_type="application/jsonl",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/production-reports",
    summary="Apply the bureau's production / shipment report (CSV or JSON Lines body)",
)
async def production_report(
    operator: CurrentOperator,
    platform: PlatformDep,
    request: Request,
    name: Annotated[
        str, Query(pattern=r"^[A-Za-z0-9_.-]{1,200}$", description="The report's file name")
    ] = "upload",
) -> dict[str, Any]:
    """`Content-Type: text/csv` or `application/jsonl`; one result per line, in order."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = REPORT_TYPES.get(kind)
    if fmt is None:
        raise InvalidRequest(
            "send the report as text/csv or application/jsonl",
            field="Content-Type",
            code="UNSUPPORTED_MEDIA_TYPE",
        )
    body = await request.body()
    importer = ReportImporter(
        report_name=name,
        uow=platform.uow,
        clock=platform.clock,
        actor=actor_of(operator),
        schema_problems=_problems,
    )
    results: list[LineResult] = []
    try:
        records = order_files.records(io.BytesIO(body), fmt)
        summary = await run_in_threadpool(importer.run, records, results.extend)
    except BadHeader as error:
        raise InvalidRequest(str(error), field="header", code="FILE_INVALID_HEADER") from None
    return {**summary.as_dict(), "results": [r.as_dict() for r in results]}

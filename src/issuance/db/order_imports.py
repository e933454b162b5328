"""Order-file import jobs (services/order_uploads.py, `ImportStore`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Engine, bindparam, or_, select, update
from sqlalchemy.orm import Session

from issuance.contract.order_files import ImportStatus
from issuance.db.engine import SQLITE_BEGIN
from issuance.db.models import OrderImportRow
from issuance.db.moments import utc
from issuance.db.repositories import PRELOAD_CHUNK
from issuance.services.order_files import FileFormat
from issuance.services.order_uploads import ImportJob

_COUNTS = ("lines", "accepted", "replayed", "refused", "bytes_read")


class SqlOrderImports:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, job: ImportJob) -> None:
        with Session(self.engine) as session, session.begin():
            session.add(
                OrderImportRow(
                    import_id=job.import_id,
                    issuer_id=job.issuer_id,
                    file_name=job.file_name,
                    file_format=job.file_format.value,
                    size_bytes=job.size_bytes,
                    actor_id=job.actor_id,
                    status=job.status.value,
                    created_at=job.created_at,
                    **{name: getattr(job, name) for name in _COUNTS},
                )
            )

    def get(self, issuer_id: str, import_id: str) -> ImportJob | None:
        query = select(OrderImportRow).where(
            OrderImportRow.issuer_id == issuer_id, OrderImportRow.import_id == import_id
        )
        with Session(self.engine) as session:
            session.connection(execution_options={SQLITE_BEGIN: "DEFERRED"})
            row = session.scalar(query)
            return None if row is None else _job(row)

    def claim(self, *, now: datetime, stale_before: datetime) -> ImportJob | None:
        """The update re-checks the condition: of two processes, one wins the job."""
        waiting = or_(
            OrderImportRow.status == ImportStatus.QUEUED.value,
            (OrderImportRow.status == ImportStatus.RUNNING.value)
            & (OrderImportRow.heartbeat_at < stale_before),
        )
        with Session(self.engine) as session, session.begin():
            row = session.scalar(
                select(OrderImportRow).where(waiting).order_by(OrderImportRow.created_at).limit(1)
            )
            if row is None:
                return None
            taken = session.execute(
                update(OrderImportRow)
                .where(OrderImportRow.import_id == row.import_id, waiting)
                .values(status=ImportStatus.RUNNING.value, heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None
            job = _job(row)
        return replace(job, status=ImportStatus.RUNNING)

    def progress(self, job: ImportJob, *, now: datetime) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(
                update(OrderImportRow)
                .where(OrderImportRow.import_id == job.import_id)
                .values(
                    status=job.status.value,
                    started_at=job.started_at,
                    finished_at=job.finished_at,
                    heartbeat_at=now,
                    error_code=job.error_code,
                    error=job.error,
                    **{name: getattr(job, name) for name in _COUNTS},
                )
            )

    def ended(self, import_ids: list[str]) -> dict[str, datetime]:
        found: dict[str, datetime] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(import_ids), PRELOAD_CHUNK):
                chunk = import_ids[start : start + PRELOAD_CHUNK]
                rows = connection.execute(_ENDED, {"ids": chunk})
                found.update({i: utc(at) for i, at in rows if at is not None})
        return found


_ENDED = select(OrderImportRow.import_id, OrderImportRow.finished_at).where(
    OrderImportRow.import_id.in_(bindparam("ids", expanding=True)),
    OrderImportRow.status.in_([ImportStatus.DONE.value, ImportStatus.FAILED.value]),
)


def _job(row: OrderImportRow) -> ImportJob:
    return ImportJob(
        import_id=row.import_id,
        issuer_id=row.issuer_id,
        file_name=row.file_name,
        file_format=FileFormat(row.file_format),
        size_bytes=row.size_bytes,
        actor_id=row.actor_id,
        status=ImportStatus(row.status),
        created_at=utc(row.created_at),
        lines=row.lines,
        accepted=row.accepted,
        replayed=row.replayed,
        refused=row.refused,
        bytes_read=row.bytes_read,
        started_at=utc(row.started_at),
        finished_at=utc(row.finished_at),
        error_code=row.error_code,
        error=row.error,
    )

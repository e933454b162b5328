"""Order files uploaded over HTTP: kept on disk and recorded as import jobs.

An upload is written to the order-files directory as `<importId>.<format>` and recorded as a
QUEUED import job before the answer is sent, so a restart never loses it; services/
import_runs.py imports it in the background and writes `<importId>.report.jsonl`. A report is
kept `keep_reports` (30 days unless configured) after its import ended, then deleted; the job
itself, a few counts, stays.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from issuance.contract.order_files import ImportStatus
from issuance.domain.errors import Gone, InvalidRequest, NotFound
from issuance.services.importing import LineReport
from issuance.services.order_files import BadHeader, FileFormat, records
from issuance.services.ordering import Clock

ABANDONED_AFTER = timedelta(hours=1)  # a partial upload untouched this long is deleted
REPORTS_KEPT = timedelta(days=30)  # after its import ended (`ISSUANCE_IMPORT_REPORT_DAYS`)
REPORT_SUFFIX = ".report.jsonl"
REPORT_FIELDS = ("line", "cardId", "result", "operationId", "errorCode", "field")


@dataclass(frozen=True, slots=True)
class ImportJob:
    import_id: str
    issuer_id: str
    file_name: str
    file_format: FileFormat
    size_bytes: int
    actor_id: str  # the issuer's API client that uploaded it (audited as the orders' actor)
    status: ImportStatus
    created_at: datetime
    lines: int = 0
    accepted: int = 0
    replayed: int = 0
    refused: int = 0
    bytes_read: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error_code: str | None = None
    error: str | None = None

    def as_wire(self) -> dict[str, Any]:
        """The import as `GET …/orderFiles/{importId}` shows it (absent fields left out)."""
        body: dict[str, Any] = {
            "importId": self.import_id,
            "fileName": self.file_name,
            "format": self.file_format.value,
            "status": self.status.value,
            "sizeBytes": self.size_bytes,
            "bytesRead": self.bytes_read,
            "progress": _progress(self),
            "lines": self.lines,
            "accepted": self.accepted,
            "replayed": self.replayed,
            "refused": self.refused,
            "createdAt": _moment(self.created_at),
            "startedAt": _moment(self.started_at),
            "finishedAt": _moment(self.finished_at),
            "errorCode": self.error_code,
            "error": self.error,
        }
        return {key: value for key, value in body.items() if value is not None}


class ImportStore(Protocol):
    def add(self, job: ImportJob) -> None: ...

    def get(self, issuer_id: str, import_id: str) -> ImportJob | None: ...

    def claim(self, *, now: datetime, stale_before: datetime) -> ImportJob | None:
        """The oldest QUEUED job, or a RUNNING one whose heartbeat is older than
        `stale_before`, now RUNNING with a fresh heartbeat; None when there is none."""
        ...

    def progress(self, job: ImportJob, *, now: datetime) -> None:
        """Save the job's counts and status; beat its heartbeat."""
        ...

    def ended(self, import_ids: list[str]) -> dict[str, datetime]:
        """When each of these imports ended (DONE or FAILED); the others are left out."""
        ...


@dataclass(frozen=True)
class Uploads:
    """Where uploads live and how jobs are recorded."""

    directory: Path
    store: ImportStore
    clock: Clock
    new_id: Callable[[], str]
    keep_reports: timedelta = REPORTS_KEPT

    def file_of(self, job: ImportJob) -> Path:
        return self.directory / f"{job.import_id}.{job.file_format.value}"

    def report_of(self, job: ImportJob) -> Path:
        return self.directory / f"{job.import_id}{REPORT_SUFFIX}"

    def scratch(self) -> Path:
        """A fresh path for an upload being received (renamed once accepted)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / f".upload-{self.new_id()}.part"

    def sweep(self, *, older_than: timedelta = ABANDONED_AFTER) -> int:
        """Delete uploads cut off mid-way (a dropped connection, a killed server); how many."""
        if not self.directory.exists():
            return 0
        cutoff = time.time() - older_than.total_seconds()
        abandoned = [p for p in self.directory.glob(".upload-*.part") if p.stat().st_mtime < cutoff]
        for path in abandoned:
            path.unlink(missing_ok=True)
        return len(abandoned)

    def expire_reports(self) -> int:
        """Delete the reports of imports that ended more than `keep_reports` ago; how many.

        Only ended imports: a queued or running one reads its report to resume where it stopped.
        """
        if not self.directory.exists():
            return 0
        reports = {
            p.name.removesuffix(REPORT_SUFFIX): p for p in self.directory.glob(f"*{REPORT_SUFFIX}")
        }
        if not reports:
            return 0
        cutoff = self.clock() - self.keep_reports
        ended = self.store.ended(sorted(reports))
        expired = [reports[i] for i, at in ended.items() if at <= cutoff]
        for path in expired:
            path.unlink(missing_ok=True)
        return len(expired)

    def accept(
        self, received: Path, *, issuer_id: str, file_name: str, fmt: FileFormat, actor_id: str
    ) -> ImportJob:
        """Check the file can be read at all (a CSV header), keep it, and queue its import."""
        try:
            _check_readable(received, fmt)
            job = ImportJob(
                import_id=self.new_id(),
                issuer_id=issuer_id,
                file_name=file_name,
                file_format=fmt,
                size_bytes=received.stat().st_size,
                actor_id=actor_id,
                status=ImportStatus.QUEUED,
                created_at=self.clock(),
            )
            received.rename(self.file_of(job))
        except BaseException:
            received.unlink(missing_ok=True)
            raise
        self.store.add(job)
        return job

    def get(self, issuer_id: str, import_id: str) -> ImportJob:
        job = self.store.get(issuer_id, import_id)
        if job is None:
            raise NotFound(
                f"no order file import {import_id} for this issuer",
                field="importId",
                code="IMPORT_NOT_FOUND",
            )
        return job

    def report(self, issuer_id: str, import_id: str) -> Iterator[dict[str, Any]]:
        """The report's rows so far, in line order (complete once the job is DONE)."""
        job = self.get(issuer_id, import_id)
        if job.finished_at is not None and job.finished_at <= self.clock() - self.keep_reports:
            days = self.keep_reports / timedelta(days=1)
            raise Gone(
                f"the report of import {import_id} was deleted {days:g} days after it ended",
                field="importId",
                code="IMPORT_REPORT_EXPIRED",
            )
        path = self.report_of(job)
        if not path.exists():
            return iter(())
        return _report_rows(path)


def _check_readable(path: Path, fmt: FileFormat) -> None:
    if path.stat().st_size == 0:
        raise InvalidRequest("the file is empty", field="body", code="FILE_EMPTY")
    if fmt is FileFormat.CSV:
        with path.open("rb") as stream:
            try:
                next(records(stream, fmt), None)
            except BadHeader as error:
                raise InvalidRequest(
                    str(error), field="header", code="FILE_INVALID_HEADER"
                ) from None
            except csv.Error as error:
                raise InvalidRequest(
                    f"the CSV cannot be read: {error}", field="body", code="FILE_INVALID_FORMAT"
                ) from None


def _report_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as stream:
        for raw in stream:
            if raw.endswith(b"\n"):  # a torn last line (a crash mid-write) is not a row yet
                yield json.loads(raw)


def report_row(report: LineReport) -> dict[str, Any]:
    """A report row: the line, its card and its outcome; never a value of the order."""
    row = {
        "line": report.line,
        "cardId": report.card_id,
        "result": report.result.value,
        "operationId": report.operation_id,
        "errorCode": report.error_code,
        "field": report.field,
    }
    return {key: value for key, value in row.items() if value is not None}


def _progress(job: ImportJob) -> float:
    if job.status is ImportStatus.DONE:
        return 1.0
    return round(job.bytes_read / job.size_bytes, 4) if job.size_bytes else 0.0


def _moment(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")

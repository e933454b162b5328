"""Order files uploaded over HTTP: kept on disk, imported in the background, resumable.

An upload is written to the order-files directory as `<importId>.<format>` and recorded as a
QUEUED import job before the answer is sent, so a restart never loses it. An `ImportThread`
claims jobs one at a time (a job RUNNING without a heartbeat for `STALE_AFTER` is a crashed
run and is claimed again) and feeds the file to the same `Importer` as `issuance orders import`.

The uploaded file is deleted once its import has ended: lines carrying card data in clear are
refused one by one, but the file holding them must not outlive the import.

The per-line report is appended to `<importId>.report.jsonl` after each committed batch, so it
holds exactly the lines whose outcome is durable. A resumed run skips the lines already
reported; lines committed just before a crash but not yet reported come back as REPLAYED (their
`issuerRequestId` makes that safe), never as a second order.
"""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

import structlog

from issuance.contract.order_files import ImportStatus
from issuance.domain.errors import InvalidRequest, NotFound
from issuance.services.importing import LineReport, Summary
from issuance.services.order_files import BadHeader, FileFormat, Progress, Record, records
from issuance.services.ordering import Clock

log = structlog.get_logger("issuance.imports")
ABANDONED_AFTER = timedelta(hours=1)  # a partial upload untouched this long is deleted
STALE_AFTER = timedelta(seconds=120)  # a run whose heartbeat is older than this has died
BATCH_SIZE = 500  # orders per commit (and heartbeat): well inside STALE_AFTER on a busy machine
POLL_SECONDS = 1.0  # between two looks for queued imports, when not woken by an upload
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


class Interrupted(Exception):
    """The server is stopping: the job goes back to the queue, to resume at the next start."""

    def __init__(self, job: ImportJob) -> None:
        super().__init__(job.import_id)
        self.job = job


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


class RunsImport(Protocol):
    """`Importer.run`: what a job needs from the importer."""

    def run(
        self, records: Iterable[Record], on_batch: Callable[[list[LineReport]], None]
    ) -> Summary: ...


@dataclass(frozen=True)
class Uploads:
    """Where uploads live and how jobs are recorded."""

    directory: Path
    store: ImportStore
    clock: Clock
    new_id: Callable[[], str]

    def file_of(self, job: ImportJob) -> Path:
        return self.directory / f"{job.import_id}.{job.file_format.value}"

    def report_of(self, job: ImportJob) -> Path:
        return self.directory / f"{job.import_id}.report.jsonl"

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


class ImportRunner:
    """Runs claimed jobs to completion: `run_next` imports one job, if any is waiting."""

    def __init__(
        self,
        uploads: Uploads,
        importer_for: Callable[[ImportJob], RunsImport],
        *,
        stale_after: timedelta = STALE_AFTER,
    ) -> None:
        self.uploads = uploads
        self.importer_for = importer_for
        self.stale_after = stale_after
        self.stopping = threading.Event()  # checked after each batch

    def run_next(self) -> ImportJob | None:
        clock, store = self.uploads.clock, self.uploads.store
        now = clock()
        job = store.claim(now=now, stale_before=now - self.stale_after)
        if job is None:
            return None
        try:
            return self._run(job)
        except Interrupted as stop:
            queued = replace(stop.job, status=ImportStatus.QUEUED)
            store.progress(queued, now=clock())
            return queued
        except csv.Error as error:  # e.g. a cell over the csv module's field size limit
            unreadable = replace(
                self.uploads.get(job.issuer_id, job.import_id),
                status=ImportStatus.FAILED,
                finished_at=clock(),
                error_code="FILE_INVALID_FORMAT",
                error=f"the CSV cannot be read past the last reported line: {error}"[:255],
            )
            store.progress(unreadable, now=clock())
            self.uploads.file_of(job).unlink(missing_ok=True)
            return unreadable
        except Exception:
            log.exception("order file import failed", import_id=job.import_id)
            failed = replace(
                job,
                status=ImportStatus.FAILED,
                finished_at=clock(),
                error_code="IMPORT_FAILED",
                error="the import stopped on an unexpected error; upload the file again",
            )
            store.progress(failed, now=clock())
            self.uploads.file_of(job).unlink(missing_ok=True)
            return failed

    def _run(self, job: ImportJob) -> ImportJob:
        report_path = self.uploads.report_of(job)
        done = _resume_point(report_path)
        job = replace(
            job,
            started_at=job.started_at or self.uploads.clock(),
            lines=done.lines,
            accepted=done.accepted,
            replayed=done.replayed,
            refused=done.refused,
        )
        read = Progress()
        state = {"job": job}
        with self.uploads.file_of(job).open("rb") as stream, report_path.open("ab") as out:
            pending = (r for r in records(stream, job.file_format, read) if r.line > done.last)

            def on_batch(reports: list[LineReport]) -> None:
                _append(out, reports)
                current = _counted(state["job"], reports, bytes_read=read.bytes_read)
                state["job"] = current
                self.uploads.store.progress(current, now=self.uploads.clock())
                if self.stopping.is_set():
                    raise Interrupted(current)

            self.importer_for(job).run(pending, on_batch)
        finished = replace(
            state["job"],
            status=ImportStatus.DONE,
            bytes_read=job.size_bytes,
            finished_at=self.uploads.clock(),
        )
        self.uploads.store.progress(finished, now=self.uploads.clock())
        self.uploads.file_of(job).unlink()  # only the report stays (it holds no order value)
        return finished


@dataclass
class _Done:
    last: int = 0  # the last line reported
    lines: int = 0
    accepted: int = 0
    replayed: int = 0
    refused: int = 0


def _resume_point(path: Path) -> _Done:
    """What a previous run of the job reported; a torn last row is cut off."""
    done = _Done()
    if not path.exists():
        return done
    with path.open("r+b") as stream:
        keep = 0
        for raw in stream:
            if not raw.endswith(b"\n"):
                break
            keep += len(raw)
            row = json.loads(raw)
            done.last = max(done.last, int(row["line"]))
            done.lines += 1
            result = row["result"]
            done.accepted += result == "ACCEPTED"
            done.replayed += result == "REPLAYED"
            done.refused += result == "REFUSED"
        stream.truncate(keep)
    return done


def _append(out: IO[bytes], reports: list[LineReport]) -> None:
    out.write(b"".join(json.dumps(report_row(r)).encode() + b"\n" for r in reports))
    out.flush()
    os.fsync(out.fileno())  # the report must not lag the committed orders by more than a batch


def _counted(job: ImportJob, reports: list[LineReport], *, bytes_read: int) -> ImportJob:
    results = [r.result.value for r in reports]
    return replace(
        job,
        lines=job.lines + len(reports),
        accepted=job.accepted + results.count("ACCEPTED"),
        replayed=job.replayed + results.count("REPLAYED"),
        refused=job.refused + results.count("REFUSED"),
        bytes_read=min(bytes_read, job.size_bytes),
    )


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


class ImportThread:
    """Runs queued imports one after another beside the API; `wake` after an upload."""

    def __init__(self, runner: ImportRunner, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.runner = runner
        self.poll_seconds = poll_seconds
        self.stopping = threading.Event()
        self.woken = threading.Event()
        self.thread = threading.Thread(target=self._run, name="order-imports", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        self.woken.set()

    def stop(self) -> None:
        self.stopping.set()
        self.runner.stopping.set()
        self.woken.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        try:
            self.runner.uploads.sweep()
        except OSError:
            log.exception("could not sweep abandoned uploads")
        while not self.stopping.is_set():
            try:
                ran = self.runner.run_next()
            except Exception:  # a failed look (database away) must not stop the thread
                log.exception("order import round failed")
                ran = None
            if ran is None:
                self.woken.wait(self.poll_seconds)
                self.woken.clear()

"""Running uploaded imports in the background: claimed one at a time, resumable after a crash.

An `ImportThread` claims jobs one at a time (a job RUNNING without a heartbeat for `STALE_AFTER`
is a crashed run and is claimed again) and feeds the file to the same `Importer` as `issuance
orders import`. The uploaded file is deleted once its import has ended: lines carrying card data
in clear are refused one by one, but the file holding them must not outlive the import.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import IO, Protocol

import structlog

from issuance.contract.order_files import ImportStatus
from issuance.services.importing import LineReport, Summary
from issuance.services.order_files import Progress, Record, records
from issuance.services.order_uploads import ImportJob, Uploads, report_row

log = structlog.get_logger("issuance.imports")
STALE_AFTER = timedelta(seconds=120)  # a run whose heartbeat is older than this has died
BATCH_SIZE = 500  # orders per commit (and heartbeat): well inside STALE_AFTER on a busy machine
POLL_SECONDS = 1.0  # between two looks for queued imports, when not woken by an upload
TIDY_EVERY = timedelta(hours=1)  # abandoned uploads and expired reports are deleted this often


class Interrupted(Exception):
    """The server is stopping: the job goes back to the queue, to resume at the next start."""

    def __init__(self, job: ImportJob) -> None:
        super().__init__(job.import_id)
        self.job = job


class RunsImport(Protocol):
    """`Importer.run`: what a job needs from the importer."""

    def run(
        self, records: Iterable[Record], on_batch: Callable[[list[LineReport]], None]
    ) -> Summary: ...


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
        tidy_at = 0.0  # monotonic
        while not self.stopping.is_set():
            if time.monotonic() >= tidy_at:
                self._tidy()
                tidy_at = time.monotonic() + TIDY_EVERY.total_seconds()
            try:
                ran = self.runner.run_next()
            except Exception:  # a failed look (database away) must not stop the thread
                log.exception("order import round failed")
                ran = None
            if ran is None:
                self.woken.wait(self.poll_seconds)
                self.woken.clear()

    def _tidy(self) -> None:
        """Delete abandoned uploads and reports past their time; never stops the thread."""
        uploads = self.runner.uploads
        try:
            swept, expired = uploads.sweep(), uploads.expire_reports()
        except Exception:  # a full disk or the database away: tried again at the next tidy
            log.exception("could not tidy the order-files directory")
            return
        if swept or expired:
            log.info("order files tidied", abandoned_uploads=swept, expired_reports=expired)

"""Uploaded imports survive a crash and a restart: resumed from the report, nothing twice."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from issuance.api.routes.order_files import _problems
from issuance.contract.order_files import ImportStatus
from issuance.db.models import OrderRow
from issuance.db.order_imports import SqlOrderImports
from issuance.domain.audit import Actor, ActorKind
from issuance.domain.errors import Gone, InvalidRequest
from issuance.platform import Platform
from issuance.services.import_runs import ImportRunner
from issuance.services.importing import Importer, LineReport, Summary
from issuance.services.order_files import FileFormat, Record
from issuance.services.order_uploads import REPORTS_KEPT, ImportJob, Uploads
from tests.factories import DEMO, card_data, encrypt, new_card_id, order_body


class Killed(BaseException):
    """The process dies: nothing after it runs, not even `except Exception`."""


class DiesAfterFirstBatch:
    def __init__(self, importer: Importer) -> None:
        self.importer = importer

    def run(
        self, records: Iterable[Record], on_batch: Callable[[list[LineReport]], None]
    ) -> Summary:
        def once(reports: list[LineReport]) -> None:
            on_batch(reports)
            raise Killed

        return self.importer.run(records, once)


def _importer(platform: Platform, job: ImportJob) -> Importer:
    return Importer(
        issuer_id=job.issuer_id,
        file_name=job.file_name,
        uow=platform.uow,
        keys=platform.intake_keys,
        clock=platform.clock,
        new_id=platform.new_id,
        actor=Actor(ActorKind.ISSUER, job.actor_id, job.issuer_id),
        schema_problems=_problems,
        batch_size=2,
    )


@pytest.fixture
def uploads(platform: Platform, tmp_path: Path) -> Uploads:
    return Uploads(
        directory=tmp_path / "order-files",
        store=SqlOrderImports(platform.engine),
        clock=platform.clock,
        new_id=platform.new_id,
    )


def _upload(uploads: Uploads, platform: Platform, cards: list[dict[str, Any]]) -> ImportJob:
    scratch = uploads.scratch()
    scratch.write_text("".join(json.dumps(card) + "\n" for card in cards))
    return uploads.accept(
        scratch, issuer_id=DEMO, file_name="f.jsonl", fmt=FileFormat.JSONL, actor_id="demobank01"
    )


def _cards(platform: Platform, count: int) -> list[dict[str, Any]]:
    jwks = platform.keys.public_jwks()
    return [
        {"cardId": new_card_id(), **order_body(encrypt(card_data(), jwks))} for _ in range(count)
    ]


def test_an_import_killed_mid_way_resumes_without_ordering_twice(
    platform: Platform, uploads: Uploads
) -> None:
    cards = _cards(platform, 5)
    job = _upload(uploads, platform, cards)
    dying = ImportRunner(uploads, lambda j: DiesAfterFirstBatch(_importer(platform, j)))
    with pytest.raises(Killed):
        dying.run_next()
    crashed = uploads.get(DEMO, job.import_id)
    assert (crashed.status, crashed.accepted) == (ImportStatus.RUNNING, 2)

    patient = ImportRunner(uploads, lambda j: _importer(platform, j))
    assert patient.run_next() is None  # its heartbeat is fresh: maybe it is still running

    restarted = ImportRunner(
        uploads, lambda j: _importer(platform, j), stale_after=timedelta(seconds=-1)
    )
    done = restarted.run_next()
    assert done is not None
    assert (done.status, done.lines, done.accepted, done.replayed) == (ImportStatus.DONE, 5, 5, 0)
    rows = list(uploads.report(DEMO, job.import_id))
    assert [row["line"] for row in rows] == [1, 2, 3, 4, 5]
    assert not uploads.file_of(job).exists()  # the file is gone once imported, its report stays
    with platform.engine.connect() as connection:
        orders = connection.scalar(
            select(func.count()).where(OrderRow.card_id.in_([c["cardId"] for c in cards]))
        )
    assert orders == 5


def test_a_torn_report_line_is_redone_as_a_replay(platform: Platform, uploads: Uploads) -> None:
    cards = _cards(platform, 3)
    job = _upload(uploads, platform, cards)
    dying = ImportRunner(uploads, lambda j: DiesAfterFirstBatch(_importer(platform, j)))
    with pytest.raises(Killed):
        dying.run_next()
    report = uploads.report_of(job)
    whole = report.read_bytes().splitlines(keepends=True)
    report.write_bytes(whole[0] + whole[1][:10])  # the crash tore the second row

    restarted = ImportRunner(
        uploads, lambda j: _importer(platform, j), stale_after=timedelta(seconds=-1)
    )
    done = restarted.run_next()
    assert done is not None
    rows = list(uploads.report(DEMO, job.import_id))
    assert [(row["line"], row["result"]) for row in rows] == [
        (1, "ACCEPTED"),
        (2, "REPLAYED"),
        (3, "ACCEPTED"),
    ]


def test_a_stopping_server_puts_its_import_back_in_the_queue(
    platform: Platform, uploads: Uploads
) -> None:
    job = _upload(uploads, platform, _cards(platform, 4))
    runner = ImportRunner(uploads, lambda j: _importer(platform, j))
    runner.stopping.set()
    stopped = runner.run_next()
    assert stopped is not None
    assert (stopped.status, stopped.lines) == (ImportStatus.QUEUED, 2)

    again = ImportRunner(uploads, lambda j: _importer(platform, j)).run_next()
    assert again is not None
    assert (again.status, again.accepted) == (ImportStatus.DONE, 4)
    assert [row["line"] for row in uploads.report(DEMO, job.import_id)] == [1, 2, 3, 4]


def test_an_unreadable_csv_row_fails_the_import_with_a_code(
    platform: Platform, uploads: Uploads
) -> None:
    scratch = uploads.scratch()
    scratch.write_text("cardId,consumerId\nc1,a\nc2," + "x" * 200_000 + "\n")
    job = uploads.accept(
        scratch, issuer_id=DEMO, file_name="f.csv", fmt=FileFormat.CSV, actor_id="demobank01"
    )
    done = ImportRunner(uploads, lambda j: _importer(platform, j)).run_next()
    assert done is not None
    assert (done.status, done.error_code) == (ImportStatus.FAILED, "FILE_INVALID_FORMAT")
    assert uploads.get(DEMO, job.import_id).status is ImportStatus.FAILED
    assert not uploads.file_of(job).exists()


def test_a_csv_whose_header_cannot_be_read_is_refused(uploads: Uploads) -> None:
    scratch = uploads.scratch()
    scratch.write_text("cardId," + "x" * 200_000 + "\n")
    with pytest.raises(InvalidRequest) as refused:
        uploads.accept(
            scratch, issuer_id=DEMO, file_name="f.csv", fmt=FileFormat.CSV, actor_id="demobank01"
        )
    assert refused.value.code == "FILE_INVALID_FORMAT"
    assert not scratch.exists()


def test_abandoned_partial_uploads_are_swept(uploads: Uploads) -> None:
    old, fresh = uploads.scratch(), uploads.scratch()
    old.write_bytes(b"half a file")
    fresh.write_bytes(b"being received")
    an_hour_ago = time.time() - 3601
    os.utime(old, (an_hour_ago, an_hour_ago))

    assert uploads.sweep() == 1
    assert not old.exists()
    assert fresh.exists()


def test_reports_of_ended_imports_are_deleted_once_their_days_are_over(
    platform: Platform, uploads: Uploads
) -> None:
    ended = _upload(uploads, platform, _cards(platform, 2))
    done = ImportRunner(uploads, lambda j: _importer(platform, j)).run_next()
    assert done is not None
    assert done.status is ImportStatus.DONE
    running = _upload(uploads, platform, _cards(platform, 3))
    with pytest.raises(Killed):
        ImportRunner(uploads, lambda j: DiesAfterFirstBatch(_importer(platform, j))).run_next()
    assert uploads.expire_reports() == 0  # not old enough yet
    assert platform.sandbox_clock is not None
    platform.sandbox_clock.advance((REPORTS_KEPT + timedelta(minutes=1)).total_seconds())

    assert uploads.expire_reports() == 1

    assert not uploads.report_of(ended).exists()
    with pytest.raises(Gone) as gone:
        uploads.report(DEMO, ended.import_id)
    assert (gone.value.code, gone.value.field) == ("IMPORT_REPORT_EXPIRED", "importId")
    assert uploads.get(DEMO, ended.import_id).accepted == 2  # the job and its counts stay
    # A run that has not ended keeps its report: it resumes after the lines it holds.
    assert [row["line"] for row in uploads.report(DEMO, running.import_id)] == [1, 2]

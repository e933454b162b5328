"""Importing an order file: every line through the API's checks, many orders per transaction.

Each record goes through what the batch API does for one card (`CardItem`, `to_command`, the
checks of `stage_order`), so a file can neither skip a check nor weaken a sensitive-data rule.
Orders are committed `batch_size` at a time. With a `BulkIntake` (services/bulk_placing.py) a
batch costs one query for its keys, one for its cards and one `executemany` per table; without
one, or when the batch holds an order for a BULK container, each order is staged through the
unit of work. A batch that collides with a concurrent writer is redone card
by card with `place_order`, whose answers are then authoritative.

Every line must carry an `issuerRequestId`: that key is what makes a re-import, or a run resumed
after a crash, answer the lines already placed as replays instead of ordering them twice. A line
whose key was already placed from a file of the same name, for the same card, with the same
request and the very same JWE (its SHA-256 is stored with the order), is answered as a replay
without decrypting it again (the expensive part of a line): that is how a resumed run gets
quickly back to where it stopped. Any other line reusing a key is decrypted and checked as the
API checks a retry: the same content encrypted again is a replay, other card data is refused.

Decryption can run in worker processes (`workers`), a bounded number of batches ahead of the
single writer, which keeps memory flat and the report in line order.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import resource
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice

from pydantic import ValidationError

from issuance.contract.orders import CardItem
from issuance.domain.audit import Actor, AuditAction, AuditEntry
from issuance.domain.errors import DomainError, InvalidRequest, Problem
from issuance.services.bulk_placing import BulkBatch, BulkIntake, Placed, needs_card_by_card
from issuance.services.intake import IntakeKeys, to_command
from issuance.services.order_files import Record
from issuance.services.ordering import (
    Clock,
    Placement,
    PlaceOrder,
    place_order,
    stage_order,
)
from issuance.services.unit_of_work import Collision, UnitOfWork

SchemaProblems = Callable[[ValidationError], list[Problem]]


class Result(StrEnum):
    ACCEPTED = "ACCEPTED"
    REPLAYED = "REPLAYED"
    REFUSED = "REFUSED"


@dataclass(frozen=True, slots=True)
class LineReport:
    """One line of the report; never a value of the order, only its card and the outcome."""

    line: int
    card_id: str
    result: Result
    operation_id: str | None = None
    error_code: str | None = None
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Replay:
    """A line already placed (same key, card, file name and request): nothing to decrypt."""

    line: int
    card_id: str
    operation_id: str


Item = PlaceOrder | Replay | LineReport
Lined = tuple[int, Item]  # the item with its line number (a command does not carry one)


@dataclass
class Summary:
    lines: int = 0
    accepted: int = 0
    replayed: int = 0
    refused: int = 0
    started: float = field(default_factory=time.monotonic)
    started_cpu: float = field(default_factory=lambda: _cpu_seconds())

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def count(self, report: LineReport) -> None:
        self.lines += 1
        if report.result is Result.ACCEPTED:
            self.accepted += 1
        elif report.result is Result.REPLAYED:
            self.replayed += 1
        else:
            self.refused += 1

    def as_dict(self) -> dict[str, float | int]:
        seconds = self.seconds
        placed = self.accepted + self.replayed
        return {
            "lines": self.lines,
            "accepted": self.accepted,
            "replayed": self.replayed,
            "refused": self.refused,
            "seconds": round(seconds, 3),
            "cardsPerSecond": round(placed / seconds, 1) if seconds > 0 else 0.0,
            "cpuSeconds": round(_cpu_seconds() - self.started_cpu, 3),  # decrypting workers too
        }


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the decrypting workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class Preparer:
    """Turns records into commands (validation, decryption, sealing): the CPU-bound part."""

    issuer_id: str
    file_name: str
    keys: IntakeKeys
    schema_problems: SchemaProblems

    def items(self, records: Sequence[Record], known: dict[str, Placed]) -> list[Lined]:
        return [(record.line, self.item(record, known)) for record in records]

    def item(self, record: Record, known: dict[str, Placed]) -> Item:
        """The command for the line, a replay, or the report of its refusal."""
        card_id = record.body.get("cardId") if isinstance(record.body, dict) else None
        shown = card_id if isinstance(card_id, str) else ""
        if record.problem is not None:
            return _refused(record.line, shown, [record.problem])
        try:
            card = CardItem.model_validate(record.body)
            key = card.issuer_request_id
            if key is None:
                raise InvalidRequest(
                    "is required in a file: it is what makes a re-import safe",
                    field="issuerRequestId",
                    code="FIELD_MISSING",
                )
            digest = hashlib.sha256(card.encrypted_data.encode()).hexdigest()
            placed = known.get(key)
            if placed is not None and self._same(card, digest, placed):
                return Replay(record.line, card.card_id, placed.operation_id)
            return to_command(
                card,
                issuer_id=self.issuer_id,
                card_id=card.card_id,
                keys=self.keys,
                input_file_name=self.file_name,
                encrypted_data_digest=digest,
            )
        except ValidationError as error:
            return _refused(record.line, shown, self.schema_problems(error))
        except DomainError as error:
            return _refused(record.line, shown, list(error.all_problems))

    def _same(self, card: CardItem, digest: str, placed: Placed) -> bool:
        """Placed from this line before: anything else is decrypted and checked in full."""
        request = card.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"encrypted_data", "card_id"}
        )
        return (
            placed.card_id == card.card_id
            and placed.input_file_name == self.file_name
            and placed.encrypted_data_digest == digest
            and placed.request == request
        )


_PREPARER: Preparer | None = None  # in a worker process: set once by `_start_worker`


def _start_worker(preparer: Preparer) -> None:
    global _PREPARER  # the worker's one piece of state
    _PREPARER = preparer


def _prepare_in_worker(records: list[Record], known: dict[str, Placed]) -> list[Lined]:
    assert _PREPARER is not None
    return _PREPARER.items(records, known)


@dataclass(frozen=True)
class Importer:
    """What an import needs from the platform, and where it says what happened."""

    issuer_id: str
    file_name: str
    uow: Callable[[], UnitOfWork]
    keys: IntakeKeys
    clock: Clock
    new_id: Callable[[], str]
    actor: Actor
    schema_problems: SchemaProblems
    batch_size: int = 1000
    bulk: Callable[[], BulkIntake] | None = None  # None: each order staged through `uow`
    workers: int = 0  # decrypting processes; 0 decrypts in this one

    def run(
        self, records: Iterable[Record], on_batch: Callable[[list[LineReport]], None]
    ) -> Summary:
        """Import every record; `on_batch` gets each batch's lines once they are committed."""
        summary = Summary()
        preparer = Preparer(self.issuer_id, self.file_name, self.keys, self.schema_problems)
        ahead: deque[list[Future[list[Lined]]] | list[Lined]] = deque()
        with self._pool(preparer) as pool:
            for batch in _batches(iter(records), self.batch_size):
                known = self._known(batch)
                if pool is None:
                    ahead.append(preparer.items(batch, known))
                else:
                    ahead.append(self._submit(pool, batch, known))
                if len(ahead) > 2 * self.workers:  # bounded: a few batches in flight
                    self._flush(_ready(ahead.popleft()), summary, on_batch)
            while ahead:
                self._flush(_ready(ahead.popleft()), summary, on_batch)
        return summary

    def _pool(self, preparer: Preparer) -> _Pool:
        if self.workers < 1:
            return _Pool(None)
        context = multiprocessing.get_context("fork")  # workers inherit the keys, not a pickle
        return _Pool(
            ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=_start_worker,
                initargs=(preparer,),
            )
        )

    def _submit(
        self, pool: ProcessPoolExecutor, batch: list[Record], known: dict[str, Placed]
    ) -> list[Future[list[Lined]]]:
        size = -(-len(batch) // self.workers)
        parts = [batch[start : start + size] for start in range(0, len(batch), size)]
        return [pool.submit(_prepare_in_worker, part, _known_in(part, known)) for part in parts]

    def _known(self, batch: list[Record]) -> dict[str, Placed]:
        """The batch's keys already placed: one query, before any decryption."""
        if self.bulk is None:
            return {}
        keys = [key for record in batch if (key := _key_of(record)) is not None]
        if not keys:
            return {}
        with self.bulk() as bulk:
            return bulk.placed(self.issuer_id, keys)

    def _flush(
        self, items: list[Lined], summary: Summary, on_batch: Callable[[list[LineReport]], None]
    ) -> None:
        try:
            bulk = self.bulk
            reports = self._in_bulk(items, bulk) if bulk else self._in_one_transaction(items)
        except Collision:
            reports = [self._alone(line, item) for line, item in items]
        for report in reports:
            summary.count(report)
        on_batch(reports)

    def _in_bulk(self, items: list[Lined], bulk: Callable[[], BulkIntake]) -> list[LineReport]:
        """`stage_order`'s checks for a whole batch, with one lookup per kind of key."""
        commands = [item for _, item in items if isinstance(item, PlaceOrder)]
        if needs_card_by_card(commands):
            return self._in_one_transaction(items)
        with bulk() as intake:
            batch = BulkBatch(
                intake,
                self.issuer_id,
                commands,
                at=self.clock(),  # the batch is received, and committed, as one
                actor=self.actor,
                new_id=self.new_id,
            )
            reports = [_report_in(batch, line, item) for line, item in items]
            batch.write()
        return reports

    def replayed_entry(self, card_id: str, operation_id: str) -> AuditEntry:
        return AuditEntry(
            at=self.clock(),
            actor=self.actor,
            action=AuditAction.ORDER_REPLAYED,
            issuer_id=self.issuer_id,
            card_id=card_id,
            operation_id=operation_id,
        )

    def _in_one_transaction(self, items: list[Lined]) -> list[LineReport]:
        reports = []
        with self.uow() as uow:
            for line, item in items:
                if isinstance(item, LineReport):
                    reports.append(item)
                    continue
                if isinstance(item, Replay):
                    uow.audit.record(self.replayed_entry(item.card_id, item.operation_id))
                    reports.append(_replayed(item.line, item.card_id, item.operation_id))
                    continue
                try:
                    placement = stage_order(
                        item, uow=uow, clock=self.clock, new_id=self.new_id, actor=self.actor
                    )
                except DomainError as error:
                    reports.append(_refused(line, item.card_id, list(error.all_problems)))
                    continue
                reports.append(_placed(line, item.card_id, placement))
            uow.commit()
        return reports

    def _alone(self, line: int, item: Item) -> LineReport:
        if isinstance(item, LineReport):
            return item
        if isinstance(item, Replay):
            with self.uow() as uow:
                uow.audit.record(self.replayed_entry(item.card_id, item.operation_id))
                uow.commit()
            return _replayed(item.line, item.card_id, item.operation_id)
        try:
            placement = place_order(
                item, uow=self.uow(), clock=self.clock, new_id=self.new_id, actor=self.actor
            )
        except DomainError as error:
            return _refused(line, item.card_id, list(error.all_problems))
        return _placed(line, item.card_id, placement)


def _report_in(batch: BulkBatch, line: int, item: Item) -> LineReport:
    if isinstance(item, LineReport):
        return item
    if isinstance(item, Replay):
        batch.replayed(item.card_id, item.operation_id)
        return _replayed(item.line, item.card_id, item.operation_id)
    outcome = batch.take(item)
    if outcome.operation_id is None:
        return _refused(line, item.card_id, list(outcome.problems))
    result = Result.REPLAYED if outcome.replayed else Result.ACCEPTED
    return LineReport(line, item.card_id, result, operation_id=outcome.operation_id)


class _Pool:
    """The worker pool, if any, shut down with the import (cancelled on an error)."""

    def __init__(self, pool: ProcessPoolExecutor | None) -> None:
        self.pool = pool

    def __enter__(self) -> ProcessPoolExecutor | None:
        return self.pool

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=kind is None, cancel_futures=kind is not None)


def _key_of(record: Record) -> str | None:
    key = record.body.get("issuerRequestId") if isinstance(record.body, dict) else None
    return key if isinstance(key, str) else None


def _known_in(records: list[Record], known: dict[str, Placed]) -> dict[str, Placed]:
    """What a worker needs of `known`: its own lines' keys (it is pickled to it)."""
    if not known:
        return known
    keys = (_key_of(record) for record in records)
    return {key: known[key] for key in keys if key is not None and key in known}


def _batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while batch := list(islice(records, size)):
        yield batch


def _ready(entry: list[Future[list[Lined]]] | list[Lined]) -> list[Lined]:
    items: list[Lined] = []
    for part in entry:
        if isinstance(part, Future):
            items.extend(part.result())
        else:
            items.append(part)
    return items


def _placed(line: int, card_id: str, placement: Placement) -> LineReport:
    result = Result.REPLAYED if placement.replayed else Result.ACCEPTED
    return LineReport(line, card_id, result, operation_id=placement.operation_id)


def _replayed(line: int, card_id: str, operation_id: str) -> LineReport:
    return LineReport(line, card_id, Result.REPLAYED, operation_id=operation_id)


def _refused(line: int, card_id: str, problems: list[Problem]) -> LineReport:
    first = problems[0]
    return LineReport(line, card_id, Result.REFUSED, error_code=first.code, field=first.field)

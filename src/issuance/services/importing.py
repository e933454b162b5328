"""Importing an order file: every line through the API's checks, many orders per transaction.

Each record goes through what the batch API does for one card (`CardItem`, `to_command`, the
checks of `stage_order`), so a file can neither skip a check nor weaken a sensitive-data rule.
Orders are committed `batch_size` at a time. With a `BulkIntake` (db/bulk.py) a batch costs one
query for its keys, one for its cards and one `executemany` per table; without one, each order
is staged through the unit of work. A batch that collides with a concurrent writer is redone card
by card with `place_order`, whose answers are then authoritative.

Every line must carry an `issuerRequestId`: that key is what makes a re-import, or a run resumed
after a crash, answer the lines already placed as replays instead of ordering them twice. A line
whose key was already placed from a file of the same name, for the same card and with the same
request, is answered as a replay without decrypting it again (the expensive part of a line):
that is how a resumed run gets quickly back to where it stopped.

Decryption can run in worker processes (`workers`), a bounded number of batches ahead of the
single writer, which keeps memory flat and the report in line order.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import islice
from types import TracebackType
from typing import Any, Protocol, Self

from pydantic import ValidationError

from issuance.contract.orders import CardItem
from issuance.domain.audit import Actor, AuditAction, AuditEntry
from issuance.domain.centres import PersonalizationCentre
from issuance.domain.errors import DomainError, InvalidRequest, Problem
from issuance.domain.orders import Order
from issuance.domain.programs import IssuerConfig
from issuance.services.intake import IntakeKeys, to_command
from issuance.services.order_files import Record
from issuance.services.ordering import (
    Clock,
    Deadlines,
    Placement,
    PlaceOrder,
    accept_order,
    check_order,
    order_deadlines,
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


@dataclass(frozen=True, slots=True)
class Placed:
    """An order already holding an `issuerRequestId`, as a batch's lookup finds it."""

    operation_id: str
    card_id: str
    fingerprint: str
    input_file_name: str | None = None
    request: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An accepted order to insert, with what its rows need beside the aggregate."""

    order: Order
    request: dict[str, Any]
    fingerprint: str
    sealed: tuple[str, bytes] | None
    endpoints: tuple[str, ...]  # one outbox delivery per notification endpoint


class BulkIntake(Protocol):
    """One transaction that looks a batch up and writes it in a few statements (db/bulk.py)."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def issuer(self, issuer_id: str) -> IssuerConfig | None: ...

    def centre(self, centre_id: str) -> PersonalizationCentre | None: ...

    def placed(self, issuer_id: str, request_ids: Collection[str]) -> dict[str, Placed]:
        """The orders already placed with these keys, by key."""
        ...

    def active(self, issuer_id: str, card_ids: Collection[str]) -> dict[str, str]:
        """The operation in progress of each of these cards that has one."""
        ...

    def write(self, orders: Sequence[NewOrder], audit: Sequence[AuditEntry]) -> None:
        """The orders with their sequence numbers, journal events and deliveries; the audit."""
        ...

    def commit(self) -> None:
        """Raise `Collision` when a concurrent writer took a key or a card first."""
        ...


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
            placed = known.get(key)
            if placed is not None and self._same(card, placed):
                return Replay(record.line, card.card_id, placed.operation_id)
            return to_command(
                card,
                issuer_id=self.issuer_id,
                card_id=card.card_id,
                keys=self.keys,
                input_file_name=self.file_name,
            )
        except ValidationError as error:
            return _refused(record.line, shown, self.schema_problems(error))
        except DomainError as error:
            return _refused(record.line, shown, list(error.all_problems))

    def _same(self, card: CardItem, placed: Placed) -> bool:
        """Placed from this file before: anything else is decrypted and checked in full."""
        request = card.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"encrypted_data", "card_id"}
        )
        return (
            placed.card_id == card.card_id
            and placed.input_file_name == self.file_name
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
        with bulk() as intake:
            keys = [c.issuer_request_id for c in commands if c.issuer_request_id is not None]
            batch = _Batch(
                self,
                intake,
                placed=intake.placed(self.issuer_id, keys) if keys else {},
                active=intake.active(self.issuer_id, [c.card_id for c in commands]),
                issuer=intake.issuer(self.issuer_id) if commands else None,
                at=self.clock(),  # the batch is received, and committed, as one
            )
            reports = [batch.take(line, item) for line, item in items]
            intake.write(batch.new, batch.audit)
            intake.commit()
        return reports

    def replayed_entry(
        self, card_id: str, operation_id: str, at: datetime | None = None
    ) -> AuditEntry:
        return AuditEntry(
            at=at or self.clock(),
            actor=self.actor,
            action=AuditAction.ORDER_REPLAYED,
            issuer_id=self.issuer_id,
            card_id=card_id,
            operation_id=operation_id,
        )

    def entry(self, action: str, card_id: str, order: Order, at: datetime) -> AuditEntry:
        return AuditEntry(
            at=at,
            actor=self.actor,
            action=action,
            issuer_id=order.issuer_id,
            card_id=card_id,
            operation_id=order.operation_id,
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


class _Batch:
    """One bulk batch being checked line after line, as `stage_order` would one by one."""

    def __init__(
        self,
        importer: Importer,
        intake: BulkIntake,
        *,
        placed: dict[str, Placed],
        active: dict[str, str],
        issuer: IssuerConfig | None,
        at: datetime,
    ) -> None:
        self.importer, self.intake, self.issuer, self.at = importer, intake, issuer, at
        self.placed = placed  # keys taken so far, this batch's included
        self.active = active  # cards in progress so far, this batch's included
        self.endpoints = (
            tuple(e.endpoint_id for e in issuer.notification_endpoints) if issuer else ()
        )
        self.centres: dict[str, PersonalizationCentre | None] = {}
        self.deadlines: dict[tuple[str | None, ...], Deadlines] = {}
        self.new: list[NewOrder] = []
        self.audit: list[AuditEntry] = []

    def take(self, line: int, item: Item) -> LineReport:
        if isinstance(item, LineReport):
            return item
        if isinstance(item, Replay):
            self.audit.append(
                self.importer.replayed_entry(item.card_id, item.operation_id, self.at)
            )
            return _replayed(item.line, item.card_id, item.operation_id)
        report = self.check(item, line)
        if report is None:
            return self.accept(item, line)
        if report.result is Result.REPLAYED:
            replayed = str(report.operation_id)
            self.audit.append(self.importer.replayed_entry(item.card_id, replayed, self.at))
        return report

    def check(self, cmd: PlaceOrder, line: int) -> LineReport | None:
        """A replay or a refusal, in `stage_order`'s order of checks; None to accept."""
        found = self.placed.get(cmd.issuer_request_id) if cmd.issuer_request_id else None
        if found is not None:
            if found.fingerprint != cmd.fingerprint or found.card_id != cmd.card_id:
                return _refusal(line, cmd.card_id, "IDEMPOTENCY_KEY_REUSED", "issuerRequestId")
            return _replayed(line, cmd.card_id, found.operation_id)
        if self.issuer is None:
            return _refusal(line, cmd.card_id, "ISSUER_UNKNOWN", "issuerId")
        problems = check_order(cmd, self.issuer)
        if problems:
            return _refused(line, cmd.card_id, problems)
        if cmd.card_id in self.active:
            return _refusal(line, cmd.card_id, "ORDER_IN_PROGRESS", "cardId")
        return None

    def accept(self, cmd: PlaceOrder, line: int) -> LineReport:
        assert self.issuer is not None  # `check` refuses an unknown issuer
        importer = self.importer
        deadlines = self._deadlines(cmd, self.issuer)
        order = accept_order(
            cmd, self.issuer, deadlines, at=self.at, operation_id=importer.new_id()
        )
        self.new.append(NewOrder(order, cmd.request, cmd.fingerprint, cmd.sealed, self.endpoints))
        self.audit.append(importer.entry(AuditAction.ORDER_PLACED, order.card_id, order, self.at))
        if cmd.issuer_request_id is not None:
            placed = Placed(order.operation_id, order.card_id, cmd.fingerprint)
            self.placed[cmd.issuer_request_id] = placed
        self.active[order.card_id] = order.operation_id
        return LineReport(line, order.card_id, Result.ACCEPTED, order.operation_id)

    def _deadlines(self, cmd: PlaceOrder, issuer: IssuerConfig) -> Deadlines:
        spec = cmd.spec
        kind = (spec.card_product_id, spec.issuance, spec.priority, spec.shipment_type)
        if kind not in self.deadlines:
            self.deadlines[kind] = order_deadlines(cmd, issuer, self._centre, self.at)
        return self.deadlines[kind]

    def _centre(self, centre_id: str) -> PersonalizationCentre | None:
        if centre_id not in self.centres:
            self.centres[centre_id] = self.intake.centre(centre_id)
        return self.centres[centre_id]


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


def _refusal(line: int, card_id: str, code: str, field: str) -> LineReport:
    return LineReport(line, card_id, Result.REFUSED, error_code=code, field=field)


def _refused(line: int, card_id: str, problems: list[Problem]) -> LineReport:
    first = problems[0]
    return LineReport(line, card_id, Result.REFUSED, error_code=first.code, field=first.field)

"""Importing the bureau's production / shipment report: many orders advanced at once.

Each line is one event of one card (docs/production-files.md) and goes through the workflow's
own action (`apply_action`), so it is checked by the transition table, audited, and journalled
as one event per state change: the issuer is notified as if an operator had clicked. Lines are
applied `batch_size` per transaction; a transaction that collides with a concurrent change is
redone line by line.

Re-importing a report changes nothing: each applied line is recorded in the bureau event
ledger under (operation, event, `at`), and a line found there comes back ALREADY_APPLIED. An
illegal step (DONE for a card never started) is REFUSED with its code, the rest goes on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeGuard

from pydantic import ValidationError

from issuance.contract.common import CARD_ID_PATTERN, ISSUER_ID_PATTERN, OPERATION_ID_PATTERN
from issuance.contract.production_reports import BureauEvent, ReportLine
from issuance.domain.audit import Actor
from issuance.domain.errors import DomainError, InvalidRequest, NotFound, Problem
from issuance.domain.orders import Order
from issuance.services.order_files import Record
from issuance.services.unit_of_work import Collision, UnitOfWork
from issuance.services.workflow import Action, Clock, apply_action

SchemaProblems = Callable[[ValidationError], list[Problem]]
_OPERATION_ID, _CARD_ID, _ISSUER_ID = (
    re.compile(p) for p in (OPERATION_ID_PATTERN, CARD_ID_PATTERN, ISSUER_ID_PATTERN)
)
ACTIONS = {
    BureauEvent.STARTED: Action.START,
    BureauEvent.DONE: Action.COMPLETE,
    BureauEvent.SHIPPED: Action.SHIP,
    BureauEvent.EXCEPTION: Action.EXCEPTION,
    BureauEvent.DATA_EXCEPTION: Action.FAIL,
}


class Result(StrEnum):
    APPLIED = "APPLIED"
    ALREADY_APPLIED = "ALREADY_APPLIED"  # the same line was applied by an earlier import
    REFUSED = "REFUSED"


@dataclass(frozen=True, slots=True)
class LineResult:
    """One line of the result file: the card and the outcome, never a value of the line."""

    line: int
    card_id: str | None
    result: Result
    operation_id: str | None = None
    error_code: str | None = None
    field: str | None = None

    def as_dict(self) -> dict[str, object]:
        document = {
            "line": self.line,
            "cardId": self.card_id,
            "result": self.result.value,
            "operationId": self.operation_id,
            "errorCode": self.error_code,
            "field": self.field,
        }
        return {k: v for k, v in document.items() if v is not None}


@dataclass
class ReportSummary:
    lines: int = 0
    applied: int = 0
    already_applied: int = 0
    refused: int = 0
    started: float = field(default_factory=time.monotonic)

    def count(self, result: LineResult) -> None:
        self.lines += 1
        if result.result is Result.APPLIED:
            self.applied += 1
        elif result.result is Result.ALREADY_APPLIED:
            self.already_applied += 1
        else:
            self.refused += 1

    def as_dict(self) -> dict[str, float | int]:
        seconds = time.monotonic() - self.started
        return {
            "lines": self.lines,
            "applied": self.applied,
            "alreadyApplied": self.already_applied,
            "refused": self.refused,
            "seconds": round(seconds, 3),
            "linesPerSecond": round(self.lines / seconds, 1) if seconds > 0 else 0.0,
        }


@dataclass(frozen=True)
class ReportImporter:
    """What a report import needs from the platform."""

    report_name: str
    uow: Callable[[], UnitOfWork]
    clock: Clock
    actor: Actor
    schema_problems: SchemaProblems
    batch_size: int = 500

    def run(
        self, records: Iterable[Record], on_batch: Callable[[list[LineResult]], None]
    ) -> ReportSummary:
        """Apply every line; `on_batch` gets each batch's results once they are committed."""
        summary, pending = ReportSummary(), []
        for record in records:
            pending.append(record)
            if len(pending) >= self.batch_size:
                self._flush(pending, summary, on_batch)
                pending = []
        if pending:
            self._flush(pending, summary, on_batch)
        return summary

    def _flush(
        self,
        pending: list[Record],
        summary: ReportSummary,
        on_batch: Callable[[list[LineResult]], None],
    ) -> None:
        try:
            results = self._in_one_transaction(pending)
        except Collision:
            results = [self._alone(record) for record in pending]
        for result in results:
            summary.count(result)
        on_batch(results)

    def _alone(self, record: Record) -> LineResult:
        """The line in a transaction of its own; a second collision refuses it, to retry."""
        try:
            return self._in_one_transaction([record])[0]
        except Collision:
            problem = Problem("CONCURRENT_UPDATE", None, "the order changed meanwhile; retry")
            return _refused(record.line, None, [problem])

    def _in_one_transaction(self, records: list[Record]) -> list[LineResult]:
        with self.uow() as uow:
            now = self.clock()  # one moment per transaction: its changes commit together
            named = [_operation_named(record) for record in records]
            operation_ids = [operation_id for operation_id in named if operation_id is not None]
            cards = [card for card in map(_card_named, records) if card is not None]
            uow.orders.preload(operation_ids)  # one query each for the batch, not two a line
            operation_ids += uow.orders.preload_cards(cards)  # lines that name the card
            uow.bureau_events.preload(operation_ids)
            results = [self._line(record, uow, now) for record in records]
            uow.commit()
        return results

    def _line(self, record: Record, uow: UnitOfWork, now: datetime) -> LineResult:
        body = record.body if isinstance(record.body, dict) else {}
        shown = body.get("cardId") if isinstance(body.get("cardId"), str) else None
        if record.problem is not None:
            return _refused(record.line, shown, [record.problem])
        try:
            line = ReportLine.model_validate(body)
        except ValidationError as error:
            return _refused(record.line, shown, self.schema_problems(error))
        try:
            order = _order_of(line, uow)
        except DomainError as error:
            return _refused(record.line, shown, list(error.all_problems))
        try:
            return self._apply(record.line, line, order, uow, now)
        except DomainError as error:
            return _refused(record.line, order.card_id, list(error.all_problems), order)

    def _apply(
        self, number: int, line: ReportLine, order: Order, uow: UnitOfWork, now: datetime
    ) -> LineResult:
        if line.at > now:
            raise InvalidRequest("is in the future", field="at", code="FIELD_INVALID_VALUE")
        done = LineResult(number, order.card_id, Result.APPLIED, order.operation_id)
        if uow.bureau_events.applied(order.operation_id, line.event.value, line.at):
            return LineResult(number, order.card_id, Result.ALREADY_APPLIED, order.operation_id)
        apply_action(
            ACTIONS[line.event],
            order,
            uow=uow,
            now=now,
            reason=line.reason,
            error_code=line.error_code,
            carrier=line.carrier,
            tracking_number=line.tracking_number,
            tracking_url=line.tracking_url,
            actor=self.actor,
            audit_detail=f"report={_safe(self.report_name)};line={number}",
        )
        uow.bureau_events.record(
            order.operation_id, line.event.value, line.at, at=now, report=_safe(self.report_name)
        )
        return done


def _operation_named(record: Record) -> str | None:
    """The line's operationId, to read ahead; none unless well formed (a NUL byte, say, would
    fail the batch's read on PostgreSQL: the line itself is refused by its validation)."""
    named = record.body.get("operationId") if isinstance(record.body, dict) else None
    return named if _matches(named, _OPERATION_ID) else None


def _card_named(record: Record) -> tuple[str, str] | None:
    """(issuerId, cardId) of a line naming its card without an operationId, well formed."""
    body = record.body if isinstance(record.body, dict) else {}
    issuer_id, card_id = body.get("issuerId"), body.get("cardId")
    by_card = body.get("operationId") is None
    if by_card and _matches(issuer_id, _ISSUER_ID) and _matches(card_id, _CARD_ID):
        return issuer_id, card_id
    return None


def _matches(value: object, pattern: re.Pattern[str]) -> TypeGuard[str]:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _safe(name: str) -> str:
    """The report's file name as the audit trail may hold it: no free text, 200 characters."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:200]


def _order_of(line: ReportLine, uow: UnitOfWork) -> Order:
    """The order a line names: by `operationId`, else the card's current order."""
    if line.operation_id is not None:
        order = uow.orders.by_operation_id(line.operation_id)
        if order is None:
            raise NotFound("no such operation", field="operationId", code="OPERATION_NOT_FOUND")
        if line.card_id is not None and line.card_id != order.card_id:
            raise InvalidRequest(
                "is not the card of this operationId", field="cardId", code="FIELD_INVALID_VALUE"
            )
        return order
    if line.card_id is None or line.issuer_id is None:
        missing = "cardId" if line.card_id is None else "issuerId"
        raise InvalidRequest(
            "name the card: operationId, or cardId with issuerId",
            field=missing,
            code="FIELD_MISSING",
        )
    order = uow.orders.latest_for_card(line.issuer_id, line.card_id)
    if order is None:
        raise NotFound("the card has no production order", field="cardId", code="CARD_NOT_FOUND")
    return order


def _refused(
    number: int, card_id: str | None, problems: list[Problem], order: Order | None = None
) -> LineResult:
    first = problems[0]
    operation_id = order.operation_id if order else None
    return LineResult(number, card_id, Result.REFUSED, operation_id, first.code, first.field)

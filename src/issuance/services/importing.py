"""Importing an order file: every line through the API's checks, many orders per transaction.

Each record goes through what the batch API does for one card (`CardItem`, `to_command`,
`stage_order`), so a file can neither skip a check nor weaken a sensitive-data rule. Accepted
orders are committed `batch_size` at a time; a batch that collides with a concurrent writer is
redone card by card with `place_order`, whose answers are then authoritative.

Every line must carry an `issuerRequestId`: that key is what makes a re-import, or a run resumed
after a crash, answer the lines already placed as replays instead of ordering them twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import ValidationError

from issuance.contract.orders import CardItem
from issuance.domain.audit import Actor
from issuance.domain.errors import DomainError, InvalidRequest, Problem
from issuance.services.intake import IntakeKeys, to_command
from issuance.services.order_files import Record
from issuance.services.ordering import Clock, Placement, PlaceOrder, place_order, stage_order
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


@dataclass
class Summary:
    lines: int = 0
    accepted: int = 0
    replayed: int = 0
    refused: int = 0
    started: float = field(default_factory=time.monotonic)

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
        }


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

    def run(
        self, records: Iterable[Record], on_batch: Callable[[list[LineReport]], None]
    ) -> Summary:
        """Import every record; `on_batch` gets each batch's lines once they are committed."""
        summary = Summary()
        pending: list[tuple[Record, PlaceOrder | LineReport]] = []
        for record in records:
            pending.append((record, self._command(record)))
            if len(pending) >= self.batch_size:
                self._flush(pending, summary, on_batch)
                pending = []
        if pending:
            self._flush(pending, summary, on_batch)
        return summary

    def _command(self, record: Record) -> PlaceOrder | LineReport:
        """The command for the line, or the report of its refusal (decryption happens here)."""
        card_id = record.body.get("cardId") if isinstance(record.body, dict) else None
        shown = card_id if isinstance(card_id, str) else ""
        if record.problem is not None:
            return _refused(record.line, shown, [record.problem])
        try:
            card = CardItem.model_validate(record.body)
            if card.issuer_request_id is None:
                raise InvalidRequest(
                    "is required in a file: it is what makes a re-import safe",
                    field="issuerRequestId",
                    code="FIELD_MISSING",
                )
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

    def _flush(
        self,
        pending: list[tuple[Record, PlaceOrder | LineReport]],
        summary: Summary,
        on_batch: Callable[[list[LineReport]], None],
    ) -> None:
        try:
            reports = self._in_one_transaction(pending)
        except Collision:
            reports = [self._alone(record, item) for record, item in pending]
        for report in reports:
            summary.count(report)
        on_batch(reports)

    def _in_one_transaction(
        self, pending: list[tuple[Record, PlaceOrder | LineReport]]
    ) -> list[LineReport]:
        reports = []
        with self.uow() as uow:
            for record, item in pending:
                if isinstance(item, LineReport):
                    reports.append(item)
                    continue
                try:
                    placement = stage_order(
                        item, uow=uow, clock=self.clock, new_id=self.new_id, actor=self.actor
                    )
                except DomainError as error:
                    reports.append(_refused(record.line, item.card_id, list(error.all_problems)))
                    continue
                reports.append(_placed(record.line, item.card_id, placement))
            uow.commit()
        return reports

    def _alone(self, record: Record, item: PlaceOrder | LineReport) -> LineReport:
        if isinstance(item, LineReport):
            return item
        try:
            placement = place_order(
                item, uow=self.uow(), clock=self.clock, new_id=self.new_id, actor=self.actor
            )
        except DomainError as error:
            return _refused(record.line, item.card_id, list(error.all_problems))
        return _placed(record.line, item.card_id, placement)


def _placed(line: int, card_id: str, placement: Placement) -> LineReport:
    result = Result.REPLAYED if placement.replayed else Result.ACCEPTED
    return LineReport(line, card_id, result, operation_id=placement.operation_id)


def _refused(line: int, card_id: str, problems: list[Problem]) -> LineReport:
    first = problems[0]
    return LineReport(line, card_id, Result.REFUSED, error_code=first.code, field=first.field)

"""Ordering a batch of cards (D1 "Order cards"): one answer line per card, idempotent twice over.

Per card: a card with an `issuerRequestId` is replayed exactly as a single order is. Per
request: the answer of a batch that created orders is kept for `REPLAY_WINDOW`, under a keyed
digest of its cards (each valid card by its fingerprint, decrypted content included, so a retry
that re-encrypts the card data is still the same request; each refused card by its raw item). A
retry of the whole request gets that answer back (accepted lines marked `replayed`) and creates
nothing, even for cards that carry no `issuerRequestId`.

Cards are placed `CHUNK` at a time in one transaction, as the file import does: through a
`BulkIntake` (a few statements a chunk, services/bulk_placing.py) when there is one and no card
joins a BULK container, otherwise staged card by card. A chunk that collides with a concurrent
writer is redone card by card with `place_order`, whose answers are then authoritative.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from issuance.domain.audit import Actor
from issuance.domain.errors import DomainError, Problem
from issuance.services.bulk_placing import BulkBatch, BulkIntake, Outcome, needs_card_by_card
from issuance.services.ordering import Clock, Placement, PlaceOrder, place_order, stage_order
from issuance.services.unit_of_work import Collision, UnitOfWork

CHUNK = 200  # cards per transaction: bounds how long SQLite's write lock is held (~0.2 s)
REPLAY_WINDOW = timedelta(hours=24)  # how long a whole-request retry is answered from memory
RETRYABLE = frozenset({"CONCURRENT_REQUEST"})  # an answer holding one of these is not kept

Line = dict[str, Any]


class BatchReplies(Protocol):
    """The answers of batches that created orders, by issuer and request digest."""

    def find(self, issuer_id: str, digest: str, *, since: datetime) -> list[Line] | None: ...

    def keep(self, issuer_id: str, digest: str, lines: list[Line], *, at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class Item:
    """One card of the request: its command, or the problems that refused it before placing."""

    card_id: str  # as sent, "" when missing or not a string
    command: PlaceOrder | None
    problems: Sequence[Problem] = ()
    raw: Any = None  # the item as sent, for the digest of a refused card only


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    lines: list[Line]
    replayed: bool  # the whole request was answered from a previous identical one


@dataclass(frozen=True)
class BatchOrdering:
    """What ordering a batch needs; `uow` makes a fresh unit of work per transaction."""

    uow: Callable[[], UnitOfWork]
    replies: BatchReplies
    clock: Clock
    new_id: Callable[[], str]
    actor: Actor
    digest_key: bytes
    bulk: Callable[[], BulkIntake] | None = None  # None: every card staged through `uow`

    def order(self, issuer_id: str, items: list[Item]) -> BatchAnswer:
        digest = request_digest(items, self.digest_key)
        items = refuse_duplicates(items)
        kept = self.replies.find(issuer_id, digest, since=self.clock() - REPLAY_WINDOW)
        if kept is not None:
            return BatchAnswer([_as_replay(line) for line in kept], replayed=True)
        lines: list[Line] = []
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            lines.extend(self._chunk(issuer_id, chunk, first_index=start))
        created = any(line.get("operationId") and not line.get("replayed") for line in lines)
        if created and not any(line.get("errorCode") in RETRYABLE for line in lines):
            self.replies.keep(issuer_id, digest, lines, at=self.clock())
        return BatchAnswer(lines, replayed=False)

    def _chunk(self, issuer_id: str, items: list[Item], *, first_index: int) -> list[Line]:
        commands = [item.command for item in items if item.command is not None]
        try:
            if self.bulk is not None and not needs_card_by_card(commands):
                return self._in_bulk(issuer_id, items, commands, self.bulk, first_index)
            return self._in_one_transaction(items, first_index)
        except Collision:
            return [self._alone(item, first_index + n) for n, item in enumerate(items)]

    def _in_bulk(
        self,
        issuer_id: str,
        items: list[Item],
        commands: list[PlaceOrder],
        bulk: Callable[[], BulkIntake],
        first_index: int,
    ) -> list[Line]:
        with bulk() as intake:
            batch = BulkBatch(
                intake, issuer_id, commands, at=self.clock(), actor=self.actor, new_id=self.new_id
            )
            lines = [
                refused_line(first_index + n, item.card_id, item.problems)
                if item.command is None
                else outcome_line(first_index + n, item.card_id, batch.take(item.command))
                for n, item in enumerate(items)
            ]
            batch.write()
        return lines

    def _in_one_transaction(self, items: list[Item], first_index: int) -> list[Line]:
        lines = []
        with self.uow() as uow:
            for n, item in enumerate(items):
                index = first_index + n
                if item.command is None:
                    lines.append(refused_line(index, item.card_id, item.problems))
                    continue
                try:
                    placement = stage_order(
                        item.command,
                        uow=uow,
                        clock=self.clock,
                        new_id=self.new_id,
                        actor=self.actor,
                    )
                except DomainError as error:
                    lines.append(refused_line(index, item.card_id, error.all_problems))
                    continue
                lines.append(placed_line(item.card_id, placement))
            uow.commit()
        return lines

    def _alone(self, item: Item, index: int) -> Line:
        if item.command is None:
            return refused_line(index, item.card_id, item.problems)
        try:
            placement = place_order(
                item.command, uow=self.uow(), clock=self.clock, new_id=self.new_id, actor=self.actor
            )
        except DomainError as error:
            return refused_line(index, item.card_id, error.all_problems)
        return placed_line(item.card_id, placement)


def refuse_duplicates(items: list[Item]) -> list[Item]:
    """A card, or an `issuerRequestId`, twice in one request: every repeat after the first is
    refused, since the two could only be one order (or one would replace the other)."""
    first_card: dict[str, int] = {}
    first_key: dict[str, int] = {}
    checked = []
    for index, item in enumerate(items):
        problem = None
        if item.command is not None:
            key = item.command.issuer_request_id
            if item.card_id in first_card:
                problem = Problem(
                    "DUPLICATE_CARD_ID",
                    "cardId",
                    f"the card is already in cards[{first_card[item.card_id]}] of this request",
                )
            elif key is not None and key in first_key:
                problem = Problem(
                    "DUPLICATE_ISSUER_REQUEST_ID",
                    "issuerRequestId",
                    f"already used by cards[{first_key[key]}] of this request",
                )
            first_card.setdefault(item.card_id, index)
            if key is not None:
                first_key.setdefault(key, index)
        checked.append(item if problem is None else Item(item.card_id, None, (problem,), item.raw))
    return checked


def request_digest(items: list[Item], key: bytes) -> str:
    """Keyed digest of the request's cards, in order; no unkeyed hash of card data is kept."""
    digest = hmac.new(key, b"batch-request:v1", hashlib.sha256)
    for item in items:
        token = (
            item.command.fingerprint
            if item.command is not None
            else json.dumps(item.raw, sort_keys=True, separators=(",", ":"), default=str)
        )
        digest.update(len(token).to_bytes(8, "big") + token.encode())
    return digest.hexdigest()


def placed_line(card_id: str, placement: Placement) -> Line:
    line: Line = {"cardId": card_id, "operationId": placement.operation_id}
    if placement.replayed:
        line["replayed"] = True
    return line


def outcome_line(index: int, card_id: str, outcome: Outcome) -> Line:
    if outcome.operation_id is None:
        return refused_line(index, card_id, outcome.problems)
    return placed_line(card_id, Placement(outcome.operation_id, outcome.replayed))


def refused_line(index: int, card_id: str, problems: Sequence[Problem]) -> Line:
    """The card's first problem, its field prefixed with `cards[i]` (in `error` too)."""
    first = problems[0]
    field = f"cards[{index}].{first.field}" if first.field else f"cards[{index}]"
    error = f"{field}: {first.message}" if first.field else first.message
    return {"cardId": card_id, "errorCode": first.code, "error": error, "field": field}


def _as_replay(line: Line) -> Line:
    return {**line, "replayed": True} if line.get("operationId") else dict(line)

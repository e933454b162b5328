"""Placing many orders in one transaction: `stage_order`'s checks, with one lookup per kind of key.

The per-card path costs about ten statements an order. A batch of the API (up to 1000 cards) or
of a file import is instead looked up with one query for its keys and one for its cards, checked
here card after card in `stage_order`'s order, and written by a `BulkIntake` (db/bulk.py) with
one `executemany` per table. The rows are exactly the per-card path's.

An order for a BULK container is not placed here: joining a container locks and may create it,
which the per-card path does; `needs_card_by_card` tells the callers to take that path.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from issuance.domain.audit import Actor, AuditAction, AuditEntry
from issuance.domain.centres import PersonalizationCentre
from issuance.domain.containers import container_of_request
from issuance.domain.errors import DomainError, InvalidRequest, Problem
from issuance.domain.orders import Order
from issuance.domain.programs import IssuerConfig
from issuance.services.ordering import (
    Deadlines,
    PlaceOrder,
    accept_order,
    check_order,
    in_progress,
    key_reused,
    order_deadlines,
    unknown_issuer,
)


@dataclass(frozen=True, slots=True)
class Placed:
    """An order already holding an `issuerRequestId`, as a batch's lookup finds it."""

    operation_id: str
    card_id: str
    fingerprint: str
    input_file_name: str | None = None
    request: dict[str, Any] | None = None
    encrypted_data_digest: str | None = None


@dataclass(frozen=True, slots=True)
class LookUp:
    """A batch's look-ups: the orders already placed with its keys (by key), the operation in
    progress of each of its cards that has one (by card), and the issuer's configuration."""

    placed: dict[str, Placed]
    active: dict[str, str]
    issuer: IssuerConfig | None


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An accepted order to insert, with what its rows need beside the aggregate."""

    order: Order
    request: dict[str, Any]
    fingerprint: str
    sealed: tuple[str, bytes] | None
    endpoints: tuple[str, ...]  # one outbox delivery per notification endpoint
    encrypted_data_digest: str | None = None


class Busy(Exception):
    """Another writer holds the database, and the transaction was asked not to wait for it."""


class BulkIntake(Protocol):
    """One transaction that looks a batch up and writes it in a few statements (db/bulk.py).

    Entering it may raise `Busy` when it was built not to wait for another writer.
    """

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def look_up(
        self, issuer_id: str, request_ids: Collection[str], card_ids: Collection[str]
    ) -> LookUp:
        """What the batch is checked against, read at once."""
        ...

    def centre(self, centre_id: str) -> PersonalizationCentre | None: ...

    def placed(self, issuer_id: str, request_ids: Collection[str]) -> dict[str, Placed]:
        """The orders already placed with these keys, by key (a file's batch asks before it
        decrypts anything)."""
        ...

    def write(self, orders: Sequence[NewOrder], audit: Sequence[AuditEntry]) -> None:
        """The orders with their sequence numbers, journal events and deliveries; the audit."""
        ...

    def commit(self) -> None:
        """Raise `Collision` when a concurrent writer took a key or a card first."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one card: placed (or replayed) as `operation_id`, or refused by `error`
    (the very error the per-card path raises, so an HTTP answer maps it the same way)."""

    operation_id: str | None = None
    replayed: bool = False
    error: DomainError | None = None

    @property
    def problems(self) -> Sequence[Problem]:
        return self.error.all_problems if self.error is not None else ()


def needs_card_by_card(commands: Collection[PlaceOrder]) -> bool:
    """Whether any order joins a BULK container (only the per-card path does that)."""
    return any(container_of_request(cmd.request.get("shipment")) for cmd in commands)


class BulkBatch:
    """One transaction's orders, checked one after the other as `stage_order` would."""

    def __init__(
        self,
        intake: BulkIntake,
        issuer_id: str,
        commands: Sequence[PlaceOrder],
        *,
        at: datetime,
        actor: Actor,
        new_id: Callable[[], str],
    ) -> None:
        self.intake, self.issuer_id, self.at, self.actor, self.new_id = (
            intake,
            issuer_id,
            at,
            actor,
            new_id,
        )
        keys = [c.issuer_request_id for c in commands if c.issuer_request_id is not None]
        found = intake.look_up(issuer_id, keys, [c.card_id for c in commands])
        self.placed = found.placed  # this batch's keys and cards join them as they are taken
        self.active = found.active
        self.issuer = found.issuer if commands else None
        self.endpoints = (
            tuple(e.endpoint_id for e in self.issuer.notification_endpoints) if self.issuer else ()
        )
        self.centres: dict[str, PersonalizationCentre | None] = {}
        self.deadlines: dict[tuple[str | None, ...], Deadlines] = {}
        self.new: list[NewOrder] = []
        self.audit: list[AuditEntry] = []

    def take(self, cmd: PlaceOrder) -> Outcome:
        """Accept, replay or refuse the order; a replay is audited as one."""
        found = self.placed.get(cmd.issuer_request_id) if cmd.issuer_request_id else None
        if found is not None:
            if found.fingerprint != cmd.fingerprint or found.card_id != cmd.card_id:
                return Outcome(error=key_reused(cmd))
            self.replayed(cmd.card_id, found.operation_id)
            return Outcome(found.operation_id, replayed=True)
        if self.issuer is None:
            return Outcome(error=unknown_issuer(cmd.issuer_id))
        problems = check_order(cmd, self.issuer)
        if problems:
            return Outcome(error=InvalidRequest.from_problems(problems))
        if cmd.card_id in self.active:
            return Outcome(error=in_progress(cmd, self.active[cmd.card_id]))
        return Outcome(self._accept(cmd, self.issuer))

    def replayed(self, card_id: str, operation_id: str) -> None:
        self.audit.append(self._entry(AuditAction.ORDER_REPLAYED, card_id, operation_id))

    def write(self) -> None:
        """Insert what was accepted, and commit; `Collision` if a concurrent writer won."""
        self.intake.write(self.new, self.audit)
        self.intake.commit()

    def _accept(self, cmd: PlaceOrder, issuer: IssuerConfig) -> str:
        order = accept_order(
            cmd, issuer, self._deadlines(cmd, issuer), at=self.at, operation_id=self.new_id()
        )
        self.new.append(
            NewOrder(
                order,
                cmd.request,
                cmd.fingerprint,
                cmd.sealed,
                self.endpoints,
                cmd.encrypted_data_digest,
            )
        )
        self.audit.append(self._entry(AuditAction.ORDER_PLACED, order.card_id, order.operation_id))
        if cmd.issuer_request_id is not None:
            self.placed[cmd.issuer_request_id] = Placed(
                order.operation_id, order.card_id, cmd.fingerprint
            )
        self.active[order.card_id] = order.operation_id
        return order.operation_id

    def _entry(self, action: str, card_id: str, operation_id: str) -> AuditEntry:
        return AuditEntry(
            at=self.at,
            actor=self.actor,
            action=action,
            issuer_id=self.issuer_id,
            card_id=card_id,
            operation_id=operation_id,
        )

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

"""Placing production orders (idempotently), dry runs, and on-demand status."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from issuance.domain import sla
from issuance.domain.audit import PLATFORM, Actor, AuditAction, AuditEntry
from issuance.domain.centres import PersonalizationCentre
from issuance.domain.errors import Conflict, IdempotencyMismatch, InvalidRequest, NotFound, Problem
from issuance.domain.orders import Order
from issuance.domain.programs import IssuerConfig, Program
from issuance.domain.validation import OrderSpec, materials_for, validate_order
from issuance.services.audit import audit_order
from issuance.services.containers import container_problems, join_container
from issuance.services.unit_of_work import Collision, UnitOfWork

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """One card order, already decrypted, checked against the schema and sealed.

    `fingerprint` identifies the request's content (decrypted data included) so that a retry with
    the same `issuerRequestId` can be told apart from a different order reusing the key.
    `encrypted_data_digest` (order files only) lets a re-import recognise its own lines without
    decrypting them (services/importing.py).
    """

    issuer_id: str
    card_id: str
    issuer_request_id: str | None
    consumer_id: str | None
    spec: OrderSpec
    request: dict[str, Any]
    fingerprint: str
    sealed: tuple[str, bytes] | None
    input_file_name: str | None = None
    encrypted_data_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    operation_id: str
    replayed: bool


def check_order(cmd: PlaceOrder, issuer: IssuerConfig) -> list[Problem]:
    """Every configuration problem of the order (the dry run's answer)."""
    return validate_order(cmd.spec, issuer)


def place_order(
    cmd: PlaceOrder,
    *,
    uow: UnitOfWork,
    clock: Clock,
    new_id: Callable[[], str],
    actor: Actor = PLATFORM,
) -> Placement:
    """Accept an order at `CARD_PROD_REQUESTED`, or replay the one placed with the same key.

    A retry with the same `issuerRequestId` and content gets the original operation back; the
    same key with other content is refused; a second order for a card that already has one in
    progress is refused. When two identical requests race, the database's unique constraints
    pick the winner and the loser is answered as a replay.
    """
    with uow:
        placement = stage_order(cmd, uow=uow, clock=clock, new_id=new_id, actor=actor)
        try:
            uow.commit()
        except Collision:
            uow.rollback()
            return _audited_replay(cmd, _after_collision(cmd, uow), uow, actor, clock())
        return placement


def stage_order(
    cmd: PlaceOrder,
    *,
    uow: UnitOfWork,
    clock: Clock,
    new_id: Callable[[], str],
    actor: Actor = PLATFORM,
) -> Placement:
    """`place_order` without the commit, in the caller's open unit of work.

    File imports stage many orders and commit them together; the caller commits (or, on
    `Collision`, falls back to `place_order` card by card).
    """
    replay = _replay(cmd, uow)
    if replay is not None:
        _record_replay(cmd, replay, uow, actor, clock())
        return replay
    issuer = _issuer(cmd.issuer_id, uow)
    problems = check_order(cmd, issuer)
    if problems:
        raise InvalidRequest.from_problems(problems)
    try:
        _refuse_if_in_progress(cmd, uow)
    except Conflict:
        # On PostgreSQL (read committed) an identical request may commit between our replay
        # check and this one: its order is then the one in progress, and ours is its replay.
        replay = _replay(cmd, uow)
        if replay is None:
            raise
        _record_replay(cmd, replay, uow, actor, clock())
        return replay
    product = issuer.card_product(cmd.spec.card_product_id)
    assert product is not None  # validation guarantees it
    program = issuer.program(product.program_id)
    centre = uow.config.centre(program.personalization_centre_id)
    received_at = clock()
    container = join_container(uow, cmd.issuer_id, cmd.request.get("shipment"), at=received_at)
    due, cancellable_until = _deadlines(cmd, program, centre, received_at)
    order = Order.accept(
        operation_id=new_id(),
        issuer_id=cmd.issuer_id,
        card_id=cmd.card_id,
        at=received_at,
        issuer_request_id=cmd.issuer_request_id,
        consumer_id=cmd.consumer_id,
        card_product_id=product.card_product_id,
        input_file_name=cmd.input_file_name,
        production_site=program.personalization_centre_id,
        due_date=due,
        cancellable_until=cancellable_until,
        priority=cmd.spec.priority,
        materials=materials_for(cmd.spec, issuer),
        container=container,
    )
    uow.orders.add(
        order,
        request=cmd.request,
        fingerprint=cmd.fingerprint,
        sealed=cmd.sealed,
        encrypted_data_digest=cmd.encrypted_data_digest,
    )
    audit_order(uow, actor, AuditAction.ORDER_PLACED, order, at=received_at)
    return Placement(order.operation_id, replayed=False)


def _audited_replay(
    cmd: PlaceOrder, replay: Placement, uow: UnitOfWork, actor: Actor, at: datetime
) -> Placement:
    """A retry answered with the original is audited too: who asked again, and when."""
    _record_replay(cmd, replay, uow, actor, at)
    uow.commit()
    return replay


def _record_replay(
    cmd: PlaceOrder, replay: Placement, uow: UnitOfWork, actor: Actor, at: datetime
) -> None:
    uow.audit.record(
        AuditEntry(
            at=at,
            actor=actor,
            action=AuditAction.ORDER_REPLAYED,
            issuer_id=cmd.issuer_id,
            card_id=cmd.card_id,
            operation_id=replay.operation_id,
        )
    )


def _deadlines(
    cmd: PlaceOrder, program: Program, centre: PersonalizationCentre | None, received_at: datetime
) -> tuple[datetime | None, datetime | None]:
    """The SLA due date, and the cut-off of the production day (cancellation ends there)."""
    if centre is None:
        return None, None
    due = sla.due_date(
        received_at,
        centre=centre,
        rules=program.sla,
        issuance=cmd.spec.issuance,
        priority=cmd.spec.priority,
        shipment_type=cmd.spec.shipment_type,
    )
    day = sla.production_day(received_at, centre=centre)
    cut_off = datetime.combine(day, centre.cut_off, tzinfo=ZoneInfo(centre.time_zone))
    return due, cut_off.astimezone(UTC)


def _issuer(issuer_id: str, uow: UnitOfWork) -> IssuerConfig:
    issuer = uow.config.issuer(issuer_id)
    if issuer is None:
        raise unknown_issuer(issuer_id)
    return issuer


def unknown_issuer(issuer_id: str) -> NotFound:
    return NotFound(
        f"issuer {issuer_id} is not configured", field="issuerId", code="ISSUER_UNKNOWN"
    )


def key_reused(cmd: PlaceOrder) -> IdempotencyMismatch:
    return IdempotencyMismatch(
        f"issuerRequestId {cmd.issuer_request_id} was already used for a different order",
        field="issuerRequestId",
    )


def in_progress(cmd: PlaceOrder, operation_id: str) -> Conflict:
    return Conflict(
        f"card {cmd.card_id} already has a production order in progress ({operation_id})",
        field="cardId",
        code="ORDER_IN_PROGRESS",
    )


def _replay(cmd: PlaceOrder, uow: UnitOfWork) -> Placement | None:
    if cmd.issuer_request_id is None:
        return None
    found = uow.orders.by_issuer_request_id(cmd.issuer_id, cmd.issuer_request_id)
    if found is None:
        return None
    order, fingerprint = found
    if fingerprint != cmd.fingerprint or order.card_id != cmd.card_id:
        raise key_reused(cmd)
    return Placement(order.operation_id, replayed=True)


def _refuse_if_in_progress(cmd: PlaceOrder, uow: UnitOfWork) -> None:
    active = uow.orders.active_for_card(cmd.issuer_id, cmd.card_id)
    if active is not None:
        raise in_progress(cmd, active.operation_id)


def _after_collision(cmd: PlaceOrder, uow: UnitOfWork) -> Placement:
    """A concurrent request won: answer as its replay, or say why this one cannot be placed."""
    replay = _replay(cmd, uow)
    if replay is not None:
        return replay
    _refuse_if_in_progress(cmd, uow)
    raise Conflict(
        "a concurrent request for this card is being processed; retry",
        field="cardId",
        code="CONCURRENT_REQUEST",
    )


def card_operations(card_id: str, orders: list[tuple[Order, int]]) -> list[dict[str, Any]]:
    """Every PRODUCE operation of the card, oldest first, each with its latest sequence, from its
    orders as read (`for_card`); NotFound when it has none."""
    if not orders:
        raise NotFound(
            f"card {card_id} has no production order", field="cardId", code="CARD_NOT_FOUND"
        )
    return [order.operation(sequence=sequence) for order, sequence in orders]


def dry_run(cmd: PlaceOrder, *, uow: UnitOfWork) -> list[Problem]:
    """Every reason `place_order` would refuse `cmd`, without creating anything."""
    with uow:
        issuer = _issuer(cmd.issuer_id, uow)
        problems = check_order(cmd, issuer)
        problems += container_problems(uow, cmd.issuer_id, cmd.request.get("shipment"))
        for check in (_replay, _refuse_if_in_progress):
            try:
                check(cmd, uow)
            except (IdempotencyMismatch, Conflict) as error:
                problems.append(Problem(error.code, error.field, error.message))
    return problems


Deadlines = tuple[datetime | None, datetime | None]  # SLA due date, cancellation cut-off


def order_deadlines(
    cmd: PlaceOrder,
    issuer: IssuerConfig,
    centre: Callable[[str], PersonalizationCentre | None],
    at: datetime,
) -> Deadlines:
    """The deadlines `stage_order` gives a valid `cmd` received at `at`.

    They depend only on the product, `issuance`, `priority` and shipment type besides `at`, so
    a file import received at one moment computes them once per kind of order.
    """
    product = issuer.card_product(cmd.spec.card_product_id)
    assert product is not None  # validation guarantees it
    program = issuer.program(product.program_id)
    return _deadlines(cmd, program, centre(program.personalization_centre_id), at)


def accept_order(
    cmd: PlaceOrder,
    issuer: IssuerConfig,
    deadlines: Deadlines,
    *,
    at: datetime,
    operation_id: str,
) -> Order:
    """The order `stage_order` accepts for a valid `cmd` (file imports build theirs with it)."""
    product = issuer.card_product(cmd.spec.card_product_id)
    assert product is not None  # validation guarantees it
    program = issuer.program(product.program_id)
    due, cancellable_until = deadlines
    return Order.accept(
        operation_id=operation_id,
        issuer_id=cmd.issuer_id,
        card_id=cmd.card_id,
        at=at,
        issuer_request_id=cmd.issuer_request_id,
        consumer_id=cmd.consumer_id,
        card_product_id=product.card_product_id,
        input_file_name=cmd.input_file_name,
        production_site=program.personalization_centre_id,
        due_date=due,
        cancellable_until=cancellable_until,
        priority=cmd.spec.priority,
        materials=materials_for(cmd.spec, issuer),
    )

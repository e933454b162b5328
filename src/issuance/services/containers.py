"""BULK containers: what the bureau and the branch do with them, card by card in the journal.

A container action loads the container and its cards (its manifest: the orders naming its
`groupId`), applies the container's transition, then moves each card that travels with it
through the Order aggregate, so every card gets its own event and notification, carrying
`details.container`. All of it commits together, or nothing does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from issuance.domain.audit import PLATFORM, Actor, AuditEntry
from issuance.domain.containers import (
    CARD_SHIPMENT,
    Container,
    ContainerRef,
    ContainerStatus,
    container_of_request,
    refusal_to_join,
)
from issuance.domain.errors import Conflict, InvalidRequest, NotFound, Problem
from issuance.domain.operations import iso_utc
from issuance.domain.orders import Order, Shipment
from issuance.domain.statuses import Hold, OperationStatus, ProductionStatus
from issuance.services.audit import audit_order
from issuance.services.unit_of_work import Collision, UnitOfWork
from issuance.services.workflow import configured_carrier

Clock = Callable[[], datetime]
MAX_LISTED = 20  # card ids named in an error message, at most


class ContainerAction:
    """Audit names of container actions (`container.ship`…); per card, `order.container_*`."""

    SHIP = "container.ship"
    TRACK = "container.track"
    RECEIVE = "container.receive"
    HAND_OVER = "order.hand_over"


def join_container(
    uow: UnitOfWork, issuer_id: str, shipment: dict[str, Any] | None, *, at: datetime
) -> ContainerRef | None:
    """The container a new BULK order goes into, created OPEN if it is the first card."""
    wanted = container_of_request(shipment)
    if wanted is None:
        return None
    container = uow.containers.ensure(issuer_id, wanted.group_id, order_id=wanted.order_id, at=at)
    refusal = refusal_to_join(container, wanted)
    if refusal is not None:
        raise refusal
    return container.ref()


def container_problems(
    uow: UnitOfWork, issuer_id: str, shipment: dict[str, Any] | None
) -> list[Problem]:
    """What `join_container` would refuse, without creating the container (the dry run)."""
    wanted = container_of_request(shipment)
    if wanted is None:
        return []
    container = uow.containers.get(issuer_id, wanted.group_id, lock=False)
    refusal = refusal_to_join(container, wanted) if container is not None else None
    return [] if refusal is None else list(refusal.all_problems)


def _load(uow: UnitOfWork, issuer_id: str, group_id: str, *, lock: bool = True) -> Container:
    """The container, locked before its cards are read (so no card joins it meanwhile)."""
    container = uow.containers.get(issuer_id, group_id, lock=lock)
    if container is None:
        raise NotFound(
            f"issuer {issuer_id} has no container {group_id}",
            field="groupId",
            code="CONTAINER_NOT_FOUND",
        )
    return container


def _commit(uow: UnitOfWork) -> None:
    try:
        uow.commit()
    except Collision:
        raise Conflict(
            "the container or one of its cards changed meanwhile; read it again and retry",
            code="CONCURRENT_UPDATE",
        ) from None


def _travelling(orders: list[Order]) -> list[Order]:
    """The cards still in the container: not failed or cancelled."""
    return [o for o in orders if o.status is not OperationStatus.FAILED]


def _moving_with(container_status: ContainerStatus, orders: list[Order]) -> list[Order]:
    """The shipped cards still where the container was (not, say, destroyed after a return)."""
    expected = CARD_SHIPMENT[container_status]
    return [
        o
        for o in _travelling(orders)
        if o.container is not None
        and o.container.status is container_status
        and o.shipment is not None
        and o.shipment.status is expected
    ]


def _audit(uow: UnitOfWork, actor: Actor, action: str, container: Container, at: datetime) -> None:
    uow.audit.record(
        AuditEntry(
            at=at,
            actor=actor,
            action=action,
            issuer_id=container.issuer_id,
            detail=f"groupId={container.group_id};status={container.status.value}",
        )
    )


def ship(
    *,
    issuer_id: str,
    group_id: str,
    carrier: str | None,
    tracking_number: str | None,
    tracking_url: str | None,
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor = PLATFORM,
) -> dict[str, Any]:
    """Hand the container to the carrier: every card in it becomes CARD_SHIPPED with its tracking
    (the carrier of the cards' shipping method when none is named).

    All or nothing: while a card is not personalized yet (or is held), the container waits,
    and the refusal names those cards. Once RETURNED, shipping again re-ships the cards that
    came back (not those the issuer had destroyed) with the new tracking.
    """
    with uow:
        now, container = clock(), _load(uow, issuer_id, group_id)
        reshipping = container.status is ContainerStatus.RETURNED
        container.check_move(ContainerStatus.IN_TRANSIT)
        members = uow.containers.members(issuer_id, group_id)
        if reshipping:
            cards = _moving_with(container.status, members)
        else:
            cards = _travelling(members)
            _refuse_unready(container, cards)
        carrier = carrier or _configured_carrier(cards, uow)
        container.ship(
            carrier=carrier, tracking_number=tracking_number, tracking_url=tracking_url, at=now
        )
        for order in cards:
            order.container = container.ref()
            if reshipping:
                given = {"tracking_number": tracking_number, "tracking_url": tracking_url}
                changes = {k: v for k, v in given.items() if v is not None}
                order.update_shipment(
                    CARD_SHIPMENT[container.status],
                    at=now,
                    message="re-shipped",
                    carrier=carrier,
                    **changes,
                )
            else:
                shipment = Shipment(carrier, tracking_number, tracking_url)
                order.move_to(ProductionStatus.CARD_SHIPPED, at=now, shipment=shipment)
            audit_order(
                uow, actor, ContainerAction.SHIP, order, at=now, detail=f"groupId={group_id}"
            )
        return _finish(uow, actor, ContainerAction.SHIP, container, cards, now)


def _configured_carrier(cards: list[Order], uow: UnitOfWork) -> str:
    """The carrier of the cards' shipping method, when the operator names none."""
    carrier = next((c for o in cards if (c := configured_carrier(o, uow))), None)
    if carrier is None:
        raise InvalidRequest("name the carrier: the cards have no shipping method", field="carrier")
    return carrier


def _refuse_unready(container: Container, cards: list[Order]) -> None:
    if not cards:
        raise Conflict(
            f"container {container.group_id} holds no card to ship",
            field="groupId",
            code="CONTAINER_EMPTY",
        )
    waiting = [
        o.card_id
        for o in cards
        if o.production_status is not ProductionStatus.CARD_PROD_DONE or o.hold is not Hold.NONE
    ]
    if waiting:
        named = ", ".join(waiting[:MAX_LISTED]) + (" …" if len(waiting) > MAX_LISTED else "")
        raise Conflict(
            f"{len(waiting)} card(s) of container {container.group_id} are not ready to ship "
            f"(personalized and not held): {named}",
            field="cards",
            code="CONTAINER_NOT_READY",
        )


def track(
    status: ContainerStatus,
    *,
    issuer_id: str,
    group_id: str,
    uow: UnitOfWork,
    clock: Clock,
    message: str | None = None,
    actor: Actor = PLATFORM,
) -> dict[str, Any]:
    """A carrier's report (UNDELIVERABLE, RETURNED) for the container and each card in it."""
    return _move(
        lambda c, now: c.report(status, at=now, message=message),
        ContainerAction.TRACK,
        issuer_id=issuer_id,
        group_id=group_id,
        uow=uow,
        clock=clock,
        message=message,
        actor=actor,
    )


def receive(
    *,
    issuer_id: str,
    group_id: str,
    uow: UnitOfWork,
    clock: Clock,
    message: str | None = None,
    actor: Actor = PLATFORM,
) -> dict[str, Any]:
    """The branch received the container: each card in it is DELIVERED (to the branch)."""
    return _move(
        lambda c, now: c.receive(at=now, message=message),
        ContainerAction.RECEIVE,
        issuer_id=issuer_id,
        group_id=group_id,
        uow=uow,
        clock=clock,
        message=message or "received at branch",
        actor=actor,
    )


def _move(
    change: Callable[[Container, datetime], None],
    action: str,
    *,
    issuer_id: str,
    group_id: str,
    uow: UnitOfWork,
    clock: Clock,
    message: str | None,
    actor: Actor,
) -> dict[str, Any]:
    """Move the container, then the cards that travel with it (same status as it had)."""
    with uow:
        now, container = clock(), _load(uow, issuer_id, group_id)
        before = container.status
        change(container, now)
        cards = _moving_with(before, uow.containers.members(issuer_id, group_id))
        for order in cards:
            order.container = container.ref()
            order.update_shipment(CARD_SHIPMENT[container.status], at=now, message=message)
            audit_order(uow, actor, action, order, at=now, detail=f"groupId={group_id}")
        return _finish(uow, actor, action, container, cards, now)


def _finish(
    uow: UnitOfWork,
    actor: Actor,
    action: str,
    container: Container,
    cards: list[Order],
    now: datetime,
) -> dict[str, Any]:
    uow.containers.save(container)
    _audit(uow, actor, action, container, now)
    _commit(uow)
    return {**container_view(container), "movedCardIds": [o.card_id for o in cards]}


def hand_over(
    *,
    issuer_id: str,
    group_id: str,
    card_id: str,
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor = PLATFORM,
) -> dict[str, Any]:
    """The branch handed one card of a received container to its cardholder; its operation."""
    with uow:
        now = clock()
        _load(uow, issuer_id, group_id)
        order = next(
            (
                o
                for o in reversed(uow.containers.members(issuer_id, group_id))
                if o.card_id == card_id and o.status is not OperationStatus.FAILED
            ),
            None,
        )
        if order is None:
            raise NotFound(
                f"container {group_id} holds no card {card_id}",
                field="cardId",
                code="CARD_NOT_IN_CONTAINER",
            )
        order.hand_to_cardholder(at=now)
        audit_order(
            uow, actor, ContainerAction.HAND_OVER, order, at=now, detail=f"groupId={group_id}"
        )
        _commit(uow)
        return order.operation()


def list_containers(
    *,
    issuer_id: str,
    uow: UnitOfWork,
    statuses: tuple[str, ...] = (),
    order_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The issuer's containers, most recently changed first, with their number of cards."""
    with uow:
        found = uow.containers.search(issuer_id, statuses=statuses, order_id=order_id, limit=limit)
        return [{**container_view(c), "cardCount": count} for c, count in found]


def manifest(*, issuer_id: str, group_id: str, uow: UnitOfWork) -> dict[str, Any]:
    """The container, its tracking, and every card in it with where each stands."""
    with uow:
        container = _load(uow, issuer_id, group_id, lock=False)
        cards = [_card_line(o) for o in uow.containers.members(issuer_id, group_id)]
        return {**container_view(container), "cardCount": len(cards), "cards": cards}


def container_view(container: Container) -> dict[str, Any]:
    """A container in our wire shape (camelCase, absent fields left out)."""
    fields: dict[str, Any] = {
        "groupId": container.group_id,
        "orderId": container.order_id,
        "status": container.status.value,
        "carrier": container.carrier,
        "trackingNumber": container.tracking_number,
        "trackingUrl": container.tracking_url,
        "message": container.message,
        "createdAt": iso_utc(container.created_at),
        "shippedAt": iso_utc(container.shipped_at) if container.shipped_at else None,
        "receivedAt": iso_utc(container.received_at) if container.received_at else None,
        "updatedAt": iso_utc(container.updated_at) if container.updated_at else None,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _card_line(order: Order) -> dict[str, Any]:
    handed = order.container.handed_to_cardholder_at if order.container else None
    line: dict[str, Any] = {
        "cardId": order.card_id,
        "operationId": order.operation_id,
        "status": order.status.value,
        "productionStatus": order.production_status.value,
        "shipmentStatus": order.shipment.status.value if order.shipment else None,
        "onHold": order.hold.value if order.hold is not Hold.NONE else None,
        "handedToCardholderAt": iso_utc(handed) if handed else None,
    }
    return {k: v for k, v in line.items() if v is not None}

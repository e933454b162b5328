"""Driving orders through production and shipment: what a bureau operator (or the simulator) does.

Every action loads the card's current order, applies one domain method (which checks its
transition table) and commits: the change and its journal event land together or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from issuance.domain import sla
from issuance.domain.audit import PLATFORM, Actor, AuditAction, AuditEntry, order_action
from issuance.domain.errors import Conflict, IllegalTransition, InvalidRequest, NotFound
from issuance.domain.orders import Order, Shipment
from issuance.domain.statuses import Hold, ProductionStatus, ShipmentStatus
from issuance.services.audit import audit_order
from issuance.services.unit_of_work import Collision, UnitOfWork

Clock = Callable[[], datetime]
OUT_OF_STOCK = "OUT_OF_STOCK"
_S = ProductionStatus


class Action(StrEnum):
    """What an operator can do to an order (`issuance orders advance ISSUER CARD ACTION`)."""

    PREPARE = "prepare"  # personalization data processed → DATA_PREPARED
    QUEUE = "queue"  # put in a production batch → CARD_PROD_READY
    START = "start"  # personalization starts, stock is taken → CARD_PROD_ONGOING
    COMPLETE = "complete"  # personalized → CARD_PROD_DONE
    SHIP = "ship"  # handed to the carrier → CARD_SHIPPED
    DELIVER = "deliver"  # the carrier delivered it
    UNDELIVERABLE = "undeliverable"  # the carrier could not deliver it
    RETURN = "return"  # back at the bureau, waiting for the issuer's decision
    HOLD = "hold"  # hold back (bureau)
    RELEASE = "release"  # lift the hold
    RESUME = "resume"  # out of the production exception → CARD_PROD_READY
    EXCEPTION = "exception"  # stop production, resumable → CARD_PROD_EXCEPTION
    FAIL = "fail"  # reject the card → DATA_EXCEPTION
    CANCEL = "cancel"  # cancel before personalization → CARD_PROD_CANCELED


def _commit(uow: UnitOfWork) -> None:
    """Commit; a concurrent change of the same order is a 409 to retry, not a 500."""
    try:
        uow.commit()
    except Collision:
        raise Conflict(
            "the order changed meanwhile; read it again and retry", code="CONCURRENT_UPDATE"
        ) from None


def _card_order(uow: UnitOfWork, issuer_id: str, card_id: str) -> Order:
    order = uow.orders.latest_for_card(issuer_id, card_id)
    if order is None:
        raise NotFound(
            f"card {card_id} has no production order", field="cardId", code="CARD_NOT_FOUND"
        )
    return order


def perform(
    action: Action,
    *,
    issuer_id: str,
    card_id: str,
    uow: UnitOfWork,
    clock: Clock,
    reason: str | None = None,
    error_code: str | None = None,
    carrier: str | None = None,
    tracking_number: str | None = None,
    tracking_url: str | None = None,
    hold_by: Hold = Hold.BUREAU,
    actor: Actor = PLATFORM,
) -> dict[str, Any]:
    """Apply `action` to the card's current order; the operation object afterwards."""
    with uow:
        order = _card_order(uow, issuer_id, card_id)
        apply_action(
            action,
            order,
            uow=uow,
            now=clock(),
            reason=reason,
            error_code=error_code,
            carrier=carrier,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
            hold_by=hold_by,
            actor=actor,
        )
        _commit(uow)
        return order.operation()


def apply_action(
    action: Action,
    order: Order,
    *,
    uow: UnitOfWork,
    now: datetime,
    reason: str | None = None,
    error_code: str | None = None,
    carrier: str | None = None,
    tracking_number: str | None = None,
    tracking_url: str | None = None,
    hold_by: Hold = Hold.BUREAU,
    actor: Actor = PLATFORM,
    audit_detail: str | None = None,
) -> None:
    """`perform` inside the caller's unit of work, without committing (a report file applies
    hundreds of lines per transaction); an illegal step raises and changes nothing."""
    if action in _CONTAINER_MOVES:
        _refuse_in_container(order)
    if action is Action.START:
        _start(order, uow, now)
    elif action is Action.SHIP:
        _ship(
            order,
            uow,
            now,
            carrier=carrier,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
        )
    else:
        if action is Action.QUEUE:  # a batch of one, named like the scheduled ones
            order.production_batch = _batch_name(order, uow, now)
        _apply(order, action, now, reason=reason, error_code=error_code, hold_by=hold_by)
    detail = audit_detail or (f"errorCode={error_code}" if error_code else None)
    audit_order(uow, actor, order_action(action.value), order, at=now, detail=detail)


_SIMPLE_STEPS = {
    Action.PREPARE: _S.DATA_PREPARED,
    Action.QUEUE: _S.CARD_PROD_READY,
    Action.COMPLETE: _S.CARD_PROD_DONE,
    Action.RESUME: _S.CARD_PROD_READY,
    Action.EXCEPTION: _S.CARD_PROD_EXCEPTION,
    Action.FAIL: _S.DATA_EXCEPTION,
    Action.CANCEL: _S.CARD_PROD_CANCELED,
}
_SHIPMENT_STEPS = {
    Action.DELIVER: ShipmentStatus.DELIVERED,
    Action.UNDELIVERABLE: ShipmentStatus.UNDELIVERABLE,
    Action.RETURN: ShipmentStatus.RETURNED,
}


_CONTAINER_MOVES = frozenset({Action.SHIP, *_SHIPMENT_STEPS})
"""Moves a BULK card makes only with its container (services/containers.py), never alone."""


def _refuse_in_container(order: Order) -> None:
    if order.container is not None:
        raise Conflict(
            f"card {order.card_id} travels in container {order.container.group_id}: "
            "ship and track the container instead",
            field="cardId",
            code="CARD_IN_CONTAINER",
        )


_ONLY_FROM = {Action.QUEUE: _S.DATA_PREPARED, Action.RESUME: _S.CARD_PROD_EXCEPTION}
"""Actions that share a target step but not a source: `queue` batches, `resume` recovers."""


def _apply(
    order: Order,
    action: Action,
    now: datetime,
    *,
    reason: str | None,
    error_code: str | None,
    hold_by: Hold,
) -> None:
    source = _ONLY_FROM.get(action)
    if source is not None and order.production_status is not source:
        raise IllegalTransition(
            f"{action.value} applies to an order at {source}, not {order.production_status}",
            field="details.status",
        )
    if action in _SIMPLE_STEPS:
        order.move_to(_SIMPLE_STEPS[action], at=now, reason=reason, error_code=error_code)
    elif action in _SHIPMENT_STEPS:
        order.update_shipment(_SHIPMENT_STEPS[action], at=now, message=reason)
    elif action is Action.HOLD:
        order.put_on_hold(hold_by, at=now, reason=reason or "held")
    elif action is Action.RELEASE:
        order.release(at=now, by=hold_by)


def _start(order: Order, uow: UnitOfWork, now: datetime) -> None:
    """Personalization starts: one unit of each material, or the out-of-stock exception."""
    order.check_move(_S.CARD_PROD_ONGOING)  # before any stock is taken
    missing = uow.stock.take(order.issuer_id, order.materials)
    if missing:
        order.move_to(
            _S.CARD_PROD_EXCEPTION,
            at=now,
            error_code=OUT_OF_STOCK,
            reason=f"stock item {missing[0]} is exhausted; production resumes when it is replenished",
        )
    else:
        order.move_to(_S.CARD_PROD_ONGOING, at=now)


def _ship(
    order: Order,
    uow: UnitOfWork,
    now: datetime,
    *,
    carrier: str | None,
    tracking_number: str | None,
    tracking_url: str | None,
) -> None:
    carrier = carrier or configured_carrier(order, uow)
    if carrier is None:
        raise InvalidRequest("name the carrier: the order has no shipping method", field="carrier")
    shipment = Shipment(carrier=carrier, tracking_number=tracking_number, tracking_url=tracking_url)
    order.move_to(_S.CARD_SHIPPED, at=now, shipment=shipment)


def configured_carrier(order: Order, uow: UnitOfWork) -> str | None:
    """The carrier of the order's shipping method (`services.delivery`), if configured."""
    issuer = uow.config.issuer(order.issuer_id)
    method_id = uow.orders.request_of(order.operation_id).get("services", {}).get("delivery")
    method = (
        next((m for m in issuer.shipping_methods if m.method_id == method_id), None)
        if issuer
        else None
    )
    return method.carrier if method else None


class ReturnDecision(StrEnum):
    """What the issuer decides for a card returned to the bureau."""

    RESHIP = "RESHIP"  # send it again (to a corrected address)
    DESTROY = "DESTROY"  # destroy it securely


def decide_return(
    decision: ReturnDecision,
    *,
    issuer_id: str,
    card_id: str,
    uow: UnitOfWork,
    clock: Clock,
    tracking_number: str | None = None,
    note: str | None = None,
    actor: Actor = PLATFORM,
) -> dict[str, Any]:
    """The issuer's answer for a RETURNED card: a new shipment, or destruction."""
    with uow:
        order = _card_order(uow, issuer_id, card_id)
        audit_order(
            uow, actor, AuditAction.RETURN_DECIDED, order, at=clock(), detail=f"decision={decision}"
        )
        if decision is ReturnDecision.RESHIP:
            _refuse_in_container(order)  # a returned container is re-shipped whole
            changes = {"tracking_number": tracking_number} if tracking_number else {}
            order.update_shipment(
                ShipmentStatus.IN_TRANSIT, at=clock(), message=note or "re-shipped", **changes
            )
        else:
            order.update_shipment(ShipmentStatus.DESTROYED, at=clock(), message=note or "destroyed")
        _commit(uow)
        return order.operation()


def replenish(
    issuer_id: str,
    item: str,
    quantity: int,
    *,
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor = PLATFORM,
) -> tuple[int, list[str]]:
    """Add stock, then put the orders that waited for it back in production (CARD_PROD_READY)."""
    if quantity < 1:
        raise InvalidRequest("must be at least 1", field="quantity")
    with uow:
        level = uow.stock.replenish(issuer_id, item, quantity)
        uow.audit.record(
            AuditEntry(
                at=clock(),
                actor=actor,
                action=AuditAction.STOCK_REPLENISHED,
                issuer_id=issuer_id,
                detail=f"item={item};quantity={quantity}",
            )
        )
        levels = uow.stock.levels(issuer_id)
        resumed = []
        for order in uow.orders.search(
            issuer_id=issuer_id, statuses=(_S.CARD_PROD_EXCEPTION.value,), limit=10_000
        ):
            waiting = order.error_code == OUT_OF_STOCK and item in order.materials
            available = all(levels.get(material, 0) >= 1 for material in order.materials)
            if waiting and available and order.hold is Hold.NONE:
                order.move_to(
                    _S.CARD_PROD_READY, at=clock(), reason=f"stock item {item} replenished"
                )
                resumed.append(order.card_id)
        _commit(uow)
        return level, resumed


def batch_production(
    *,
    uow: UnitOfWork,
    clock: Clock,
    prepared_before: datetime | None = None,
    after_cut_off: bool = False,
    limit: int = 10_000,
    actor: Actor = PLATFORM,
) -> dict[str, list[str]]:
    """Group prepared orders into production batches and send them to their centres.

    Orders at `DATA_PREPARED` are grouped by centre, card product and priority; each group
    becomes one batch file, named e.g.
    `PC-PARIS_DEMO-DEBIT_STANDARD_20261125-1500.json` (centre-local date and time), which the
    operations then carry as `details.productionBatch` (their `inputFileName` stays the
    issuer's order file, if any). With `after_cut_off`, only orders whose production
    day's cut-off has passed are taken (the worker's schedule); `prepared_before` takes those
    prepared before a moment (the simulator's).
    """
    with uow:
        now = clock()
        groups: dict[str, list[Order]] = defaultdict(list)
        for order in uow.orders.search(statuses=(_S.DATA_PREPARED.value,), limit=limit):
            if order.hold is Hold.NONE and _due_for_batch(
                order, now, prepared_before, after_cut_off
            ):
                groups[_batch_name(order, uow, now)].append(order)
        for name, orders in groups.items():
            for order in orders:
                order.production_batch = name
                order.move_to(_S.CARD_PROD_READY, at=now)
                audit_order(
                    uow,
                    actor,
                    order_action(Action.QUEUE.value),
                    order,
                    at=now,
                    detail=f"batch={name}",
                )
        _commit(uow)
        return {name: [o.card_id for o in orders] for name, orders in groups.items()}


def _due_for_batch(
    order: Order, now: datetime, prepared_before: datetime | None, after_cut_off: bool
) -> bool:
    if prepared_before is not None and (order.updated_at or now) > prepared_before:
        return False
    # cancellable_until is the cut-off of the order's production day
    return not after_cut_off or (
        order.cancellable_until is not None and order.cancellable_until <= now
    )


def _batch_name(order: Order, uow: UnitOfWork, now: datetime) -> str:
    centre = uow.config.centre(order.production_site or "")
    local = now.astimezone(ZoneInfo(centre.time_zone)) if centre else now
    priority = order.priority or "STANDARD"
    return f"{order.production_site}_{order.card_product_id}_{priority}_{local:%Y%m%d-%H%M}.json"


def review_sla(*, uow: UnitOfWork, clock: Clock, limit: int = 10_000) -> int:
    """Flag orders at risk of missing their due date, or late; each change is an event."""
    with uow:
        now, changed = clock(), 0
        for order in uow.orders.in_flight(limit=limit):
            if order.due_date is None or order.production_status is _S.CARD_SHIPPED:
                continue
            standing = sla.standing(now, received_at=order.start_time, due=order.due_date)
            if (order.sla_standing or sla.SlaStanding.ON_TIME) != standing:  # on time is no news
                order.mark_sla(standing.value, at=now)
                changed += 1
        _commit(uow)
        return changed

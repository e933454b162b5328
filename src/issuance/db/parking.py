"""Parking: due deliveries that no claim may take are moved out of the claims' way.

A claim walks the due deliveries, longest due first, and skips those it may not take: a card's
event while an earlier one of the same card is still pending on that endpoint (per-card order),
and anything for a disabled endpoint. While an endpoint is down, those pile up at the front of
the walk: with 50,000 of them, every claim, for every issuer, took 70-90 ms on SQLite and
300-350 ms on PostgreSQL before reaching a delivery it could send.

So the worker parks them now and then (`PARK_EVERY`): a waiting event becomes due when the
pending event in front of it is next tried, and a disabled endpoint's deliveries an hour on,
again and again. Parking only ever moves a delivery to a moment before which no claim could
take it anyway; an operator's replay or enabling the endpoint makes them due at once.

A walk looks at the first `PARK_WINDOW` due deliveries in claim order, the ones claims trip
over, so it costs the same whatever the backlog (a million orders just imported are a million
due deliveries); a walk that parked much is followed by another at the next claim.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, case, or_, select, true, update
from sqlalchemy.orm import aliased

from issuance.db.models import DeliveryRow
from issuance.db.outbox import WALK_IN_ORDER, DeliveryStatus, endpoint_disabled, opted_out

PARK_EVERY = timedelta(seconds=10)  # how often a worker parks
PARK_WINDOW = 5_000  # due deliveries looked at by one walk, longest due first
DISABLED_FOR = timedelta(hours=1)  # a disabled endpoint's deliveries are looked at again then


def park_waiting(
    engine: Engine,
    *,
    now: datetime,
    unordered: frozenset[tuple[str, str]] = frozenset(),
) -> int:
    """Park what no claim may take now; the deliveries moved.

    `unordered` ((issuer, endpoint) pairs without per-card order) are never held behind a
    card's earlier event, so they are not parked behind one either.
    """
    pending = DeliveryStatus.PENDING.value
    d = DeliveryRow
    front = aliased(DeliveryRow)
    # when the card's first pending event on the endpoint is next tried; NULL while it is in
    # flight (it may be answered any moment)
    front_tried_at = (
        select(case((front.claimed_until > now, None), else_=front.next_attempt_at))
        .where(
            front.endpoint_id == d.endpoint_id,
            front.issuer_id == d.issuer_id,
            front.card_id == d.card_id,
            front.event_id < d.event_id,
            front.status == pending,
        )
        .order_by(front.event_id)
        .limit(1)
        .scalar_subquery()
    )
    first = aliased(DeliveryRow)
    window = (
        select(first.delivery_id)
        .where(
            first.status == pending,
            first.next_attempt_at <= now,
            or_(first.claimed_until.is_(None), first.claimed_until < now),
        )
        .order_by(first.next_attempt_at, first.delivery_id)
        .limit(PARK_WINDOW)
    )
    due = d.delivery_id.in_(window.scalar_subquery())
    ordered = ~opted_out(unordered) if unordered else true()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(WALK_IN_ORDER)
        behind = connection.execute(
            update(d)
            .where(due, ordered, front_tried_at > now)
            .values(next_attempt_at=front_tried_at)
        )
        held = connection.execute(
            update(d).where(due, endpoint_disabled()).values(next_attempt_at=now + DISABLED_FOR)
        )
        return int(behind.rowcount) + int(held.rowcount)

"""The notification outbox: claiming deliveries (one worker at a time) and settling them.

Claiming works the same on both databases: pick due deliveries whose lease is free and whose
card has no earlier delivery still pending on the same endpoint (per-card order), longest due
first, then stamp them with the worker's id and a lease. PostgreSQL skips rows other workers
are claiming (`FOR UPDATE SKIP LOCKED`); SQLite serialises writers, so two claims never overlap
there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Float,
    Integer,
    Table,
    Text,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy.orm import Session, aliased

from issuance.db.arrays import unnested
from issuance.db.endpoint_health import disable, record_attempts, reset
from issuance.db.models import Base, DeliveryAttemptRow, DeliveryRow, EndpointStateRow, EventRow
from issuance.db.moments import utc
from issuance.domain.endpoint_health import HealthPolicy
from issuance.domain.retry import Decision, Outcome, Verdict


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"  # to be sent (again)
    DELIVERED = "DELIVERED"  # acknowledged with a 2xx
    FAILED = "FAILED"  # given up after the retry window
    GONE = "GONE"  # the endpoint answered 410


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: int
    event_id: int
    issuer_id: str
    endpoint_id: str
    card_id: str
    attempts: int
    first_attempt_at: datetime | None
    encoded: bytes  # the operation object as stored (JSON): sent as it is, never parsed again
    recorded_at: datetime  # when the change was committed: the start of its delivery lag

    @property
    def operation(self) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(self.encoded))


def claim(
    engine: Engine,
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    unordered: frozenset[tuple[str, str]] = frozenset(),
) -> list[Claim]:
    """Take up to `limit` due deliveries for `lease`; the caller must settle them before it ends.

    Endpoints in `unordered` ((issuer, endpoint) pairs that opted out of per-card order, or
    sandbox chaos) may get several events of a card at once, in any order.

    One `UPDATE … RETURNING` picks, stamps and reads the claims (on PostgreSQL the events'
    JSON too; SQLite's RETURNING cannot name a joined table, so one more SELECT reads it).
    """
    postgresql = engine.dialect.name == "postgresql"
    values = {"now": now, "until": now + lease, "worker": worker_id, "limit": limit}
    with engine.begin() as connection:
        if postgresql:  # see WALK_IN_ORDER
            connection.exec_driver_sql(WALK_IN_ORDER)
        rows: list[Any] = list(connection.execute(_claiming(postgresql, unordered), values))
        if rows and not postgresql:
            found = connection.execute(_EVENTS_CLAIMED, {"ids": [row[1] for row in rows]})
            events = {event_id: (payload, at) for event_id, payload, at in found}
            rows = [(*row, *events[row[1]]) for row in rows]
    rows.sort(key=itemgetter(0))  # RETURNING keeps no order
    return [
        Claim(
            delivery, event, issuer, endpoint, card, attempts, utc(first), payload.encode(), utc(at)
        )
        for delivery, event, issuer, endpoint, card, attempts, first, payload, at in rows
    ]


@lru_cache(maxsize=64)
def _claiming(postgresql: bool, unordered: frozenset[tuple[str, str]]) -> Any:
    """The claim's `UPDATE … RETURNING`, built once per database and set of unordered endpoints
    (building it cost ~2 ms of CPU per claim); `now`, `until`, `worker` and `limit` are bound."""
    now, until = bindparam("now", type_=_MOMENT), bindparam("until", type_=_MOMENT)
    earlier = aliased(DeliveryRow)
    blocked = exists().where(
        and_(
            earlier.endpoint_id == DeliveryRow.endpoint_id,
            earlier.issuer_id == DeliveryRow.issuer_id,
            earlier.card_id == DeliveryRow.card_id,
            earlier.event_id < DeliveryRow.event_id,
            earlier.status == DeliveryStatus.PENDING.value,
        )
    )
    due = (
        select(DeliveryRow.delivery_id)
        .where(
            DeliveryRow.status == DeliveryStatus.PENDING.value,
            DeliveryRow.next_attempt_at <= now,
            (DeliveryRow.claimed_until.is_(None)) | (DeliveryRow.claimed_until < now),
            _in_order(blocked, unordered),
            ~endpoint_disabled(),
        )
        .order_by(DeliveryRow.next_attempt_at, DeliveryRow.delivery_id)  # ix_deliveries_due's
        .limit(bindparam("limit", type_=Integer()))
        .correlate(None)  # a subquery of the UPDATE below, on the same table
    )
    if postgresql:
        due = due.with_for_update(skip_locked=True, of=DeliveryRow)
    d, e = _table(DeliveryRow).c, _table(EventRow).c
    stamp = (
        update(_table(DeliveryRow))
        .where(d.delivery_id.in_(due.scalar_subquery()))
        # due again when the lease ends: claims no longer walk past the deliveries in flight
        .values(claimed_by=bindparam("worker"), claimed_until=until, next_attempt_at=until)
        .returning(
            d.delivery_id,
            d.event_id,
            d.issuer_id,
            d.endpoint_id,
            d.card_id,
            d.attempts,
            d.first_attempt_at,
        )
    )
    if postgresql:
        stamp = stamp.where(e.event_id == d.event_id).returning(
            cast_(e.payload, Text), e.recorded_at
        )
    return stamp


_MOMENT = DateTime(timezone=True)
_EVENTS_CLAIMED = (  # SQLite: the claimed events' JSON, which its RETURNING cannot join
    select(EventRow.event_id, cast_(EventRow.payload, Text), EventRow.recorded_at).where(
        EventRow.event_id.in_(bindparam("ids", expanding=True))
    )
)


# PostgreSQL reckons that few due deliveries pass the per-card check, so it reads them all and
# sorts them (50-120 ms per claim with 20,000 due, statistics or not) rather than walk
# ix_deliveries_due in order and stop at the limit (3 ms). For the claim's transaction only.
WALK_IN_ORDER = "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off"


def _in_order(blocked: Any, unordered: frozenset[tuple[str, str]]) -> Any:
    return or_(~blocked, opted_out(unordered)) if unordered else ~blocked


def opted_out(unordered: frozenset[tuple[str, str]]) -> Any:
    """The delivery is for one of these (issuer, endpoint) pairs (not empty)."""
    return or_(
        *(
            and_(DeliveryRow.issuer_id == issuer, DeliveryRow.endpoint_id == endpoint)
            for issuer, endpoint in sorted(unordered)
        )
    )


def endpoint_disabled() -> Any:
    """The delivery's endpoint is disabled (a 410, or failing too long)."""
    return exists().where(
        EndpointStateRow.issuer_id == DeliveryRow.issuer_id,
        EndpointStateRow.endpoint_id == DeliveryRow.endpoint_id,
    )


_STATUS_BY_VERDICT = {
    Verdict.DELIVERED: DeliveryStatus.DELIVERED,
    Verdict.RETRY: DeliveryStatus.PENDING,
    Verdict.GIVE_UP: DeliveryStatus.FAILED,
    Verdict.GONE: DeliveryStatus.GONE,
}


@dataclass(frozen=True, slots=True)
class Settlement:
    claim: Claim
    outcome: Outcome
    decision: Decision
    attempted_at: datetime
    latency_ms: float


def settle(
    engine: Engine,
    settlements: list[Settlement],
    *,
    worker_id: str,
    health: HealthPolicy | None = None,
) -> None:
    """Record each attempt, its consequence and the endpoints' health in one transaction;
    claims another worker took over are left alone.

    Optimistic first: when the UPDATE settles every row, this worker held them all and nothing
    needs reading first. When it settles fewer (a lease ran out and another worker took over),
    that transaction is rolled back and done again, reading which claims are still held.
    """
    if not settlements:
        return
    postgresql = engine.dialect.name == "postgresql"
    if postgresql:
        values: Any = {"b_worker": worker_id, **_settled_columns(settlements)}
    else:
        values = _settled_rows(settlements, worker_id)
    statement = _SETTLE_AND_LOG if postgresql else _SETTLE_EACH
    try:
        _settle(engine, settlements, statement, values, worker_id, health, checked=False)
    except _LostClaims:
        _settle(engine, settlements, statement, values, worker_id, health, checked=True)


class _LostClaims(Exception):
    """Some settled deliveries are another worker's by now (rolls the optimistic try back)."""


def _settle(
    engine: Engine,
    settlements: list[Settlement],
    statement: Any,
    values: Any,
    worker_id: str,
    health: HealthPolicy | None,
    *,
    checked: bool,
) -> None:
    with Session(engine) as session, session.begin():
        owned = _still_claimed(session, settlements, worker_id) if checked else None
        connection = session.connection()
        updated = connection.execute(statement, values)  # PostgreSQL: the log is in it too
        if statement is _SETTLE_EACH:  # SQLite: executemanys, as cheap as one statement (in C)
            connection.execute(_LOG_EACH, values)
        if owned is None:
            if updated.rowcount != len(settlements):
                raise _LostClaims
            owned = {item.claim.delivery_id for item in settlements}
        for item in settlements:
            if item.decision.verdict is Verdict.GONE:
                reason = f"410 Gone answered for event {item.claim.event_id}"
                disable(
                    session,
                    item.claim.issuer_id,
                    item.claim.endpoint_id,
                    at=item.attempted_at,
                    reason=reason,
                )
        record_attempts(
            session,
            _tally([item for item in settlements if item.claim.delivery_id in owned]),
            at=max(item.attempted_at for item in settlements),
            policy=health or HealthPolicy(),
        )


def _still_claimed(session: Session, settlements: list[Settlement], worker_id: str) -> set[int]:
    """The deliveries this worker still holds: a late settlement of a lost claim changes nothing
    but the attempt log (the POST did happen)."""
    query = select(DeliveryRow.delivery_id).where(
        DeliveryRow.delivery_id.in_([item.claim.delivery_id for item in settlements]),
        DeliveryRow.claimed_by == worker_id,
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return set(session.scalars(query))


def _tally(settlements: list[Settlement]) -> dict[tuple[str, str], tuple[int, int]]:
    """(successes, failures) per endpoint; a 410 is neither (it disables on its own)."""
    tally: dict[tuple[str, str], tuple[int, int]] = {}
    for item in settlements:
        key = (item.claim.issuer_id, item.claim.endpoint_id)
        ok, failed = tally.get(key, (0, 0))
        verdict = item.decision.verdict
        if verdict is Verdict.DELIVERED:
            ok += 1
        elif verdict is not Verdict.GONE:
            failed += 1
        tally[key] = (ok, failed)
    return tally


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


# What each settlement writes, by the name of its bound parameter (per row on SQLite, one array
# per column on PostgreSQL). Worked out here rather than in SQL: on SQLite each mention of a
# parameter in the statement is one more conversion in Python, per row.
_SETTLED_TYPES: dict[str, Any] = {
    "b_id": BigInteger(),
    "b_status": Text(),
    "b_code": Integer(),
    "b_error": Text(),
    "b_attempted_at": DateTime(timezone=True),
    "b_next": DateTime(timezone=True),
    "b_delivered": DateTime(timezone=True),
    "b_latency": Float(),
}
_ROW_KEYS = ("b_worker", *_SETTLED_TYPES)  # SQLite: the worker's id bound in every row too


def _settled_rows(settlements: list[Settlement], worker_id: str) -> list[dict[str, Any]]:
    """The parameters of `_SETTLE_EACH` and `_LOG_EACH`, one set per row."""
    return [
        dict(zip(_ROW_KEYS, (worker_id, *values), strict=True)) for values in _settled(settlements)
    ]


def _settled_columns(settlements: list[Settlement]) -> dict[str, list[Any]]:
    """The arrays `_SETTLE_AND_LOG` unnests: one list per column."""
    return dict(
        zip(_SETTLED_TYPES, map(list, zip(*_settled(settlements), strict=True)), strict=True)
    )


def _settled(settlements: list[Settlement]) -> Iterator[tuple[Any, ...]]:
    """Each settlement's values, in the order of `_SETTLED_TYPES`."""
    for item in settlements:
        error, status = item.outcome.error, _STATUS_BY_VERDICT[item.decision.verdict]
        yield (
            item.claim.delivery_id,
            status.value,
            item.outcome.status_code,
            error[:255] if error else None,
            item.attempted_at,
            # the retry's moment; for a delivery that is done, when it was last tried
            item.decision.next_attempt_at or item.attempted_at,
            item.attempted_at if status is DeliveryStatus.DELIVERED else None,
            float(item.latency_ms),  # binary arrays take one type: never int and float
        )


def _settling(by: Any) -> Any:
    """The UPDATE that settles claims still held by this worker, reading each one's values from
    `by` (bound parameters, or the columns of the unnested arrays)."""
    deliveries = _table(DeliveryRow)
    return (
        update(deliveries)
        .where(
            deliveries.c.delivery_id == by.b_id,
            deliveries.c.claimed_by == bindparam("b_worker", type_=Text()),
        )
        .values(
            status=by.b_status,
            attempts=deliveries.c.attempts + 1,
            claimed_by=None,
            claimed_until=None,
            last_status_code=by.b_code,
            last_error=by.b_error,
            first_attempt_at=func.coalesce(deliveries.c.first_attempt_at, by.b_attempted_at),
            next_attempt_at=by.b_next,
            delivered_at=func.coalesce(by.b_delivered, deliveries.c.delivered_at),
        )
    )


def _logging(by: Any) -> Any:
    """The INSERT into the attempt log (never the body, only what came back)."""
    return insert(_table(DeliveryAttemptRow)).from_select(
        ["delivery_id", "attempted_at", "latency_ms", "status_code", "error"],
        select(by.b_id, by.b_attempted_at, by.b_latency, by.b_code, by.b_error),
    )


class _Bound:
    """`_settling`'s values as bound parameters, one set per row (executemany)."""

    def __getattr__(self, name: str) -> Any:
        return bindparam(name, type_=_SETTLED_TYPES[name])


_SETTLE_EACH = _settling(_Bound())
_LOG_EACH = insert(_table(DeliveryAttemptRow)).values(
    delivery_id=_Bound().b_id,
    attempted_at=_Bound().b_attempted_at,
    latency_ms=_Bound().b_latency,
    status_code=_Bound().b_code,
    error=_Bound().b_error,
)


def _settling_and_logging() -> Any:
    """PostgreSQL: one statement for the whole group, its rows unnested from one array per
    column, the attempt log written by a CTE of the same statement: each array is sent and
    parsed once. Its row count is the UPDATE's.

    An executemany (a pipelined UPDATE per row) cost 55 µs of the worker's CPU per delivery
    settled; the unnested arrays 28, and 14-17 bound in binary (db/engine.py), in groups of
    1,024. With the UPDATE and the INSERT each sent its nine arrays, 11.3 µs in groups of 256;
    in one statement, the worker's id one value, 7.1 (in process, medians of three runs)."""
    settled = select(*unnested(_SETTLED_TYPES).c).cte("settled")
    logged = _logging(settled.c).cte("logged")
    return _settling(settled.c).add_cte(logged)


_SETTLE_AND_LOG = _settling_and_logging()


@dataclass(frozen=True, slots=True)
class DeliveryView:
    delivery_id: int
    event_id: int
    issuer_id: str
    endpoint_id: str
    card_id: str
    sequence: int
    status: str
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None


def replay(
    engine: Engine,
    *,
    event_ids: list[int] | None = None,
    since: datetime | None = None,
    now: datetime,
) -> int:
    """Send events again (a receiver lost them): their deliveries become due now, whatever they were.

    `event_ids` replays those events; `since` every event recorded since then (recover).
    """
    if event_ids is None and since is None:
        raise ValueError("name the events to replay, or a moment to recover from")
    with Session(engine) as session, session.begin():
        target = select(EventRow.event_id)
        if event_ids is not None:
            target = target.where(EventRow.event_id.in_(event_ids))
        if since is not None:
            target = target.where(EventRow.recorded_at >= since)
        result = session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.event_id.in_(target))
            .values(
                status=DeliveryStatus.PENDING.value,
                next_attempt_at=now,
                first_attempt_at=None,
                claimed_by=None,
                claimed_until=None,
            )
        )
        replayed = aliased(DeliveryRow)
        _due_now(  # the cards' later events, parked behind the replayed ones (db/parking.py)
            session,
            exists().where(
                replayed.endpoint_id == DeliveryRow.endpoint_id,
                replayed.issuer_id == DeliveryRow.issuer_id,
                replayed.card_id == DeliveryRow.card_id,
                replayed.event_id < DeliveryRow.event_id,
                replayed.event_id.in_(target),
            ),
            now=now,
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _due_now(session: Session, which: Any, *, now: datetime) -> None:
    """Pending deliveries due later (a retry, or parked) become due now."""
    session.execute(
        update(DeliveryRow)
        .where(
            DeliveryRow.status == DeliveryStatus.PENDING.value,
            DeliveryRow.next_attempt_at > now,
            which,
        )
        .values(next_attempt_at=now)
    )


def disabled_endpoints(engine: Engine) -> list[tuple[str, str, datetime, str]]:
    """(issuer, endpoint, since, why) of every disabled endpoint."""
    with Session(engine) as session:
        rows = session.scalars(select(EndpointStateRow).order_by(EndpointStateRow.disabled_at))
        return [
            (r.issuer_id, r.endpoint_id, utc(r.disabled_at) or r.disabled_at, r.reason)
            for r in rows
        ]


def enable_endpoint(
    engine: Engine, *, issuer_id: str, endpoint_id: str, at: datetime | None = None
) -> bool:
    """Resume delivery to an endpoint; its pending notifications are due at once (GONE and
    FAILED ones need a replay) and its failure streak starts over. False when it was not
    disabled."""
    at = at or datetime.now(UTC)
    with Session(engine) as session, session.begin():
        row = session.get(EndpointStateRow, (issuer_id, endpoint_id))
        if row is None:
            return False
        session.delete(row)
        reset(session, issuer_id, endpoint_id, at=at)
        endpoint = and_(DeliveryRow.issuer_id == issuer_id, DeliveryRow.endpoint_id == endpoint_id)
        _due_now(session, endpoint, now=at)
        return True


@dataclass(frozen=True, slots=True)
class OutboxGauges:
    """The outbox at a glance, read from the database so every process reports the same."""

    by_status: dict[str, int]
    in_flight: int  # claimed and not yet settled
    oldest_pending_age: float  # seconds since the oldest undelivered event was recorded
    attempts_last_hour: int
    mean_latency_ms_last_hour: float


def gauges(engine: Engine, *, now: datetime) -> OutboxGauges:
    with Session(engine) as session:
        counts = session.execute(
            select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
        )
        by_status = {status: int(count) for status, count in counts}
        in_flight = session.scalar(
            select(func.count()).select_from(DeliveryRow).where(DeliveryRow.claimed_until > now)
        )
        oldest = session.scalar(
            select(func.min(EventRow.recorded_at))
            .join(DeliveryRow, DeliveryRow.event_id == EventRow.event_id)
            .where(DeliveryRow.status == DeliveryStatus.PENDING.value)
        )
        recent = session.execute(
            select(func.count(), func.avg(DeliveryAttemptRow.latency_ms)).where(
                DeliveryAttemptRow.attempted_at >= now - timedelta(hours=1)
            )
        ).one()
    oldest_at = utc(oldest)
    return OutboxGauges(
        by_status={status.value: int(by_status.get(status.value, 0)) for status in DeliveryStatus},
        in_flight=int(in_flight or 0),
        oldest_pending_age=max(0.0, (now - oldest_at).total_seconds()) if oldest_at else 0.0,
        attempts_last_hour=int(recent[0] or 0),
        mean_latency_ms_last_hour=float(recent[1] or 0.0),
    )

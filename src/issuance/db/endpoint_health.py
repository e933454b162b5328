"""Endpoint health in the database: failure streaks, the events operators read, auto-disable.

Written in the settlement's transaction, so a streak never disagrees with the attempts logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import DateTime, Engine, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from issuance.db.models import Base, EndpointEventRow, EndpointHealthRow, EndpointStateRow
from issuance.db.moments import utc
from issuance.domain.endpoint_health import HealthEvent, HealthPolicy, Streak

log = structlog.get_logger("issuance.delivery")

Key = tuple[str, str]  # (issuer id, endpoint id)


def _streak(row: EndpointHealthRow | None) -> Streak:
    if row is None:
        return Streak()
    return Streak(
        consecutive_failures=row.consecutive_failures,
        failing_since=utc(row.failing_since),
        warned_at=utc(row.warned_at),
        last_success_at=utc(row.last_success_at),
        last_failure_at=utc(row.last_failure_at),
    )


def record_attempts(
    session: Session,
    tally: dict[Key, tuple[int, int]],
    *,
    at: datetime,
    policy: HealthPolicy,
) -> None:
    """Fold (successes, failures) per endpoint into its streak; warn or disable as the policy says."""
    for (issuer_id, endpoint_id), (successes, failures) in sorted(tally.items()):
        if successes and _healthy_success(session, issuer_id, endpoint_id, at=at):
            continue
        key = {"issuer_id": issuer_id, "endpoint_id": endpoint_id}
        row = session.get(EndpointHealthRow, (issuer_id, endpoint_id), with_for_update=True)
        if row is None:  # its first settlement: another worker's may be creating it too
            _insert_if_absent(session, EndpointHealthRow, {**key, "consecutive_failures": 0})
            row = session.get(EndpointHealthRow, (issuer_id, endpoint_id), with_for_update=True)
            assert row is not None  # inserted now, or by the other worker
        streak, events = policy.record(_streak(row), successes=successes, failures=failures, at=at)
        row.consecutive_failures = streak.consecutive_failures
        row.failing_since = streak.failing_since
        row.warned_at = streak.warned_at
        row.last_success_at = streak.last_success_at
        row.last_failure_at = streak.last_failure_at
        for event in events:
            since = streak.failing_since.isoformat() if streak.failing_since else "?"
            detail = {
                HealthEvent.WARNED: f"failing since {since}; disabled after "
                f"{policy.disable_after} of failure unless it recovers",
                HealthEvent.DISABLED: f"failing since {since}: disabled after {policy.disable_after}",
                HealthEvent.RECOVERED: "acknowledged a notification again",
            }[event]
            if event is HealthEvent.DISABLED:
                disable(session, issuer_id, endpoint_id, at=at, reason=detail)
            else:
                note(session, issuer_id, endpoint_id, event, detail, at=at)


def _healthy_success(session: Session, issuer_id: str, endpoint_id: str, *, at: datetime) -> bool:
    """The common case in one statement: a success on an endpoint with no streak and no warning
    only moves `last_success_at` (what `HealthPolicy.record` answers then, with no event); False
    when the endpoint has a streak or no row yet, for the full fold."""
    values = {"issuer": issuer_id, "endpoint": endpoint_id, "at": at}
    return bool(session.connection().execute(_MOVE_LAST_SUCCESS, values).rowcount)


_HEALTH = cast(Table, EndpointHealthRow.__table__)
# Core on the session's connection, built once: every settlement runs it (the ORM's bulk UPDATE
# cost 0.2-0.4 ms more of the worker's CPU each time, in process)
_MOVE_LAST_SUCCESS = (
    update(_HEALTH)
    .where(
        _HEALTH.c.issuer_id == bindparam("issuer"),
        _HEALTH.c.endpoint_id == bindparam("endpoint"),
        _HEALTH.c.consecutive_failures == 0,
        _HEALTH.c.failing_since.is_(None),
        _HEALTH.c.warned_at.is_(None),
    )
    .values(last_success_at=bindparam("at", type_=DateTime(timezone=True)))
)


def note(
    session: Session,
    issuer_id: str,
    endpoint_id: str,
    kind: HealthEvent,
    detail: str,
    *,
    at: datetime,
) -> None:
    session.add(
        EndpointEventRow(
            issuer_id=issuer_id, endpoint_id=endpoint_id, at=at, kind=kind.value, detail=detail
        )
    )
    log.warning(
        "notification endpoint " + kind.value.lower(),
        issuer_id=issuer_id,
        endpoint=endpoint_id,
        detail=detail,
    )


def disable(
    session: Session, issuer_id: str, endpoint_id: str, *, at: datetime, reason: str
) -> None:
    """Stop delivery to the endpoint (idempotent: the first reason stays, even when two workers
    are told 410 at once)."""
    state = {"disabled_at": at, "reason": reason[:255]}
    key = {"issuer_id": issuer_id, "endpoint_id": endpoint_id}
    if _insert_if_absent(session, EndpointStateRow, {**key, **state}):
        note(session, issuer_id, endpoint_id, HealthEvent.DISABLED, reason[:255], at=at)


def _insert_if_absent(session: Session, model: type[Base], values: dict[str, Any]) -> bool:
    """Insert the row unless its key exists; whether it was inserted. `ON CONFLICT DO NOTHING`:
    a concurrent twin waits for the first insert to commit, then does nothing, where looking
    first and adding would fail one of the two transactions (and its whole settlement)."""
    connection = session.connection()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    table = cast(Table, model.__table__)
    inserted = connection.execute(
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(*table.primary_key.columns)
    )
    return inserted.first() is not None


def reset(session: Session, issuer_id: str, endpoint_id: str, *, at: datetime) -> None:
    """An operator enabled the endpoint: its streak starts again from nothing."""
    row = session.get(EndpointHealthRow, (issuer_id, endpoint_id))
    if row is not None:
        row.consecutive_failures = 0
        row.failing_since = None
        row.warned_at = None
    note(session, issuer_id, endpoint_id, HealthEvent.ENABLED, "delivery resumed", at=at)


@dataclass(frozen=True, slots=True)
class EndpointEvent:
    issuer_id: str
    endpoint_id: str
    at: datetime
    kind: str
    detail: str


def endpoint_events(
    engine: Engine, *, issuer_id: str | None = None, limit: int = 100
) -> list[EndpointEvent]:
    """Newest first."""
    query = select(EndpointEventRow).order_by(EndpointEventRow.endpoint_event_id.desc())
    if issuer_id is not None:
        query = query.where(EndpointEventRow.issuer_id == issuer_id)
    with Session(engine) as session:
        return [
            EndpointEvent(r.issuer_id, r.endpoint_id, utc(r.at) or r.at, r.kind, r.detail)
            for r in session.scalars(query.limit(limit))
        ]


def streaks(engine: Engine) -> dict[Key, Streak]:
    with Session(engine) as session:
        return {
            (row.issuer_id, row.endpoint_id): _streak(row)
            for row in session.scalars(select(EndpointHealthRow))
        }

"""The production pipeline at a glance: orders per centre and step, per day, and against the SLA.

Aggregates computed by the database (GROUP BY), so a million orders cost an index scan rather
than a million rows sent to Python. Days are UTC calendar days of `start_time`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Engine, and_, case, func, or_, select

from issuance.db.engine import SQLITE_BEGIN
from issuance.db.models import OrderRow
from issuance.domain.statuses import OperationStatus, ProductionStatus

NO_CENTRE = ""  # orders refused before a centre was chosen


@dataclass(frozen=True, slots=True)
class Day:
    """Orders received on one day and how those already measurable did against their due date.

    `measured` counts orders whose SLA outcome is known: shipped, or still not shipped with the
    due date passed. Failed and cancelled orders have no SLA outcome and are left out.
    E.g. 10 received, 6 shipped (5 by their due date), 1 overdue, 3 not due yet: measured 7,
    on time 5, rate 71 %.
    """

    day: date
    received: int
    measured: int
    on_time: int

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.measured if self.measured else None


@dataclass(frozen=True, slots=True)
class Attention:
    """What needs an operator now, counted over orders still in production."""

    held: int
    at_risk: int
    late: int


def _reading(engine: Engine) -> Connection:
    return engine.connect().execution_options(**{SQLITE_BEGIN: "DEFERRED"})


def counts_by_centre(engine: Engine) -> dict[str, dict[str, int]]:
    """centre id → {details.status: orders}; `NO_CENTRE` for orders without one."""
    query = select(OrderRow.production_site, OrderRow.production_status, func.count()).group_by(
        OrderRow.production_site, OrderRow.production_status
    )
    counts: dict[str, dict[str, int]] = {}
    with _reading(engine) as connection:
        for centre, status, count in connection.execute(query):
            counts.setdefault(centre or NO_CENTRE, {})[status] = int(count)
    return counts


def attention(engine: Engine) -> Attention:
    """Held orders, and unfinished ones flagged at risk or late by the last SLA review."""
    active = OrderRow.active_card_id.is_not(None)
    query = select(
        func.count().filter(OrderRow.hold != "NONE"),
        func.count().filter(OrderRow.sla_standing == "AT_RISK"),
        func.count().filter(OrderRow.sla_standing == "LATE"),
    ).where(active)
    with _reading(engine) as connection:
        held, at_risk, late = connection.execute(query).one()
    return Attention(held=int(held or 0), at_risk=int(at_risk or 0), late=int(late or 0))


def _utc_day(engine: Engine) -> ColumnElement[date]:
    """The UTC calendar day of `start_time` (PostgreSQL's `date()` would use the session zone;
    SQLite stores UTC text already)."""
    if engine.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", OrderRow.start_time))
    return func.date(OrderRow.start_time)


def days(engine: Engine, *, now: datetime, count: int = 14) -> list[Day]:
    """The last `count` days up to `now`'s, oldest first, days without orders included."""
    first = (now.astimezone(UTC) - timedelta(days=count - 1)).date()
    shipped = OrderRow.production_status == ProductionStatus.CARD_SHIPPED.value
    on_time = and_(shipped, OrderRow.end_time <= OrderRow.due_date)
    measured = and_(
        OrderRow.status != OperationStatus.FAILED.value,
        OrderRow.due_date.is_not(None),
        or_(shipped, OrderRow.due_date < now),
    )
    day = _utc_day(engine).label("day")
    query = (
        select(
            day,
            func.count(),
            func.sum(case((measured, 1), else_=0)),
            func.sum(case((on_time, 1), else_=0)),
        )
        .where(OrderRow.start_time >= datetime.combine(first, datetime.min.time(), tzinfo=UTC))
        .group_by(day)
    )
    found: dict[date, Day] = {}
    with _reading(engine) as connection:
        for raw, received, measured_count, on_time_count in connection.execute(query):
            moment = raw if isinstance(raw, date) else date.fromisoformat(str(raw))
            found[moment] = Day(moment, int(received), int(measured_count), int(on_time_count))
    span = (first + timedelta(days=offset) for offset in range(count))
    return [found.get(d, Day(d, 0, 0, 0)) for d in span]

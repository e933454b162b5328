"""Sandbox state in the database, so every process of a sandbox shares it: clock, scenarios,
chaos."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from issuance.db.engine import SQLITE_BEGIN
from issuance.db.models import SandboxChaosRow, SandboxClockRow, SandboxScenarioRow
from issuance.domain.chaos import Chaos

CLOCK_ROW = 1


class SandboxClock:
    """The real time plus an offset that `advance` moves forward (never backward)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self) -> datetime:
        """Read with a DEFERRED transaction: callers may hold the SQLite write lock already."""
        query = select(SandboxClockRow.offset_seconds).where(SandboxClockRow.clock_id == CLOCK_ROW)
        with self.engine.connect().execution_options(**{SQLITE_BEGIN: "DEFERRED"}) as connection:
            offset = connection.scalar(query)
        return datetime.now(UTC) + timedelta(seconds=offset or 0.0)

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with Session(self.engine) as session, session.begin():
            row = session.get(SandboxClockRow, CLOCK_ROW, with_for_update=True)
            if row is None:
                session.add(SandboxClockRow(clock_id=CLOCK_ROW, offset_seconds=seconds))
            else:
                row.offset_seconds += seconds
        return self()


class SqlScenarioStore:
    """Per-card simulator scenarios and their progress."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, issuer_id: str, card_id: str) -> tuple[str, int] | None:
        query = select(SandboxScenarioRow.scenario, SandboxScenarioRow.stage).where(
            SandboxScenarioRow.issuer_id == issuer_id, SandboxScenarioRow.card_id == card_id
        )
        with self.engine.connect().execution_options(**{SQLITE_BEGIN: "DEFERRED"}) as connection:
            row = connection.execute(query).first()
        return None if row is None else (row.scenario, row.stage)

    def put(self, issuer_id: str, card_id: str, scenario: str, stage: int = 0) -> None:
        with Session(self.engine) as session, session.begin():
            session.merge(
                SandboxScenarioRow(
                    issuer_id=issuer_id, card_id=card_id, scenario=scenario, stage=stage
                )
            )


class SqlChaosStore:
    """Chaos settings per (issuer, endpoint); an endpoint without a row gets none."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> dict[tuple[str, str], Chaos]:
        with self.engine.connect().execution_options(**{SQLITE_BEGIN: "DEFERRED"}) as connection:
            rows = connection.execute(select(SandboxChaosRow)).all()
        return {
            (row.issuer_id, row.endpoint_id): Chaos(row.duplicate, row.delay_seconds, row.reorder)
            for row in rows
        }

    def put(self, issuer_id: str, endpoint_id: str, chaos: Chaos) -> None:
        with Session(self.engine) as session, session.begin():
            existing = session.get(SandboxChaosRow, (issuer_id, endpoint_id))
            if existing is not None:
                session.delete(existing)
                session.flush()
            if chaos.active:
                session.add(
                    SandboxChaosRow(
                        issuer_id=issuer_id,
                        endpoint_id=endpoint_id,
                        duplicate=chaos.duplicate,
                        delay_seconds=chaos.delay_seconds,
                        reorder=chaos.reorder,
                    )
                )

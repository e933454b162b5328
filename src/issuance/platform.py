"""The composition root: what one process builds once from its settings and passes down."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from sqlalchemy import Engine

from issuance.db.engine import make_engine
from issuance.db.sandbox import SandboxClock, SqlScenarioStore
from issuance.db.unit_of_work import SqlUnitOfWork, unit_of_work_factory
from issuance.security.keys import KeyRing, load_key_ring
from issuance.services.intake import IntakeKeys
from issuance.services.simulator import Simulator
from issuance.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_operation_id() -> str:
    """A UUID: unique across processes and databases, inside D1's `[A-Za-z0-9_-]{1,64}`."""
    return str(uuid.uuid4())


@dataclass
class Platform:
    settings: Settings
    engine: Engine
    keys: KeyRing
    uow: Callable[[], SqlUnitOfWork]  # read and write
    reader: Callable[[], SqlUnitOfWork]  # read only: never waits for writers on SQLite
    clock: Callable[[], datetime] = field(default=utc_now)
    new_id: Callable[[], str] = field(default=new_operation_id)

    sandbox_clock: SandboxClock | None = None  # set in sandbox mode: time can be advanced

    @classmethod
    def build(cls, settings: Settings) -> Platform:
        engine = make_engine(settings.database_url)
        keys = load_key_ring(settings.keys_dir, generate=settings.sandbox)
        platform = cls(
            settings=settings,
            engine=engine,
            keys=keys,
            uow=unit_of_work_factory(engine),
            reader=unit_of_work_factory(engine, read_only=True),
        )
        if settings.sandbox:
            platform.sandbox_clock = SandboxClock(engine)
            platform.clock = platform.sandbox_clock
        return platform

    @cached_property
    def intake_keys(self) -> IntakeKeys:
        """The keys order intake uses, derived once per process, not once per card."""
        return IntakeKeys(
            jwe=self.keys.jwe_keys,
            fingerprint=self.keys.fingerprint_key,
            sealing_key_id=self.keys.sealing_key_id,
            sealing_key=self.keys.data_keys[self.keys.sealing_key_id],
        )

    def simulator(self) -> Simulator:
        return Simulator(
            uow=self.uow,
            clock=self.clock,
            scenarios=SqlScenarioStore(self.engine),
            step=timedelta(seconds=self.settings.simulator_step_seconds),
        )

    def close(self) -> None:
        self.engine.dispose()

"""The composition root: what one process builds once from its settings and passes down."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from issuance.contract.sensitive import unmasked
from issuance.db.bulk import (
    PlannerStatistics,
    SqlBulkIntake,
    bulk_intake_factory,
    planner_statistics,
)
from issuance.db.engine import make_engine
from issuance.db.sandbox import SandboxClock, SqlScenarioStore
from issuance.db.unit_of_work import SqlUnitOfWork, unit_of_work_factory
from issuance.security.keys import KeyRing, KeySource
from issuance.services.grouped_ordering import GroupedOrdering
from issuance.services.intake import IntakeKeys
from issuance.services.simulator import Simulator
from issuance.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_operation_id() -> str:
    """A UUID of version 7 (RFC 9562): unique across processes and databases, inside D1's
    `[A-Za-z0-9_-]{1,64}`, and in creation order to the millisecond.

    Time first, then 74 random bits: a new order's id goes to the right edge of each index on
    operation ids (the orders' key, the journal's), where random ids dirtied a page of each
    per order, to be written to the WAL at commit and read back as the tables grow. Inserting
    and committing orders in groups of 32 on SQLite: 74 µs an order with random ids, 55 with
    these. The time in it is the order's start, which its `startTime` tells anyway.

    Never one that logs would show masked: a group of digits that passes the Luhn check reads
    as a PAN to the log's masking, and an operation id is what support searches the logs by.
    """
    milliseconds = time.time_ns() // 1_000_000
    while True:
        random = int.from_bytes(os.urandom(10), "big")
        value = (
            (milliseconds & (1 << 48) - 1) << 80
            | 0x7 << 76  # version
            | (random >> 68) << 64  # 12 random bits
            | 0b10 << 62  # variant
            | random & (1 << 62) - 1  # 62 random bits
        )
        made = str(uuid.UUID(int=value))
        if unmasked(made):  # drawn again, about one id in 600
            return made


@dataclass
class Platform:
    settings: Settings
    engine: Engine
    key_source: KeySource  # re-reads rotated key files: `keys` is always the current ring
    uow: Callable[[], SqlUnitOfWork]  # read and write
    reader: Callable[[], SqlUnitOfWork]  # read only: never waits for writers on SQLite
    clock: Callable[[], datetime] = field(default=utc_now)
    new_id: Callable[[], str] = field(default=new_operation_id)

    sandbox_clock: SandboxClock | None = None  # set in sandbox mode: time can be advanced
    statistics: PlannerStatistics | None = field(init=False)  # PostgreSQL: kept up by bulk writes
    bulk: Callable[[], SqlBulkIntake] = field(init=False)  # many orders in a few statements
    ordering: GroupedOrdering = field(init=False)  # single-card orders, committed in groups

    def __post_init__(self) -> None:
        self.statistics = planner_statistics(self.engine)
        self.bulk = bulk_intake_factory(self.engine, self.statistics)
        self.ordering = GroupedOrdering(
            uow=self.uow,
            bulk=self.bulk,
            clock=lambda: self.clock(),  # the sandbox replaces the clock after building
            new_id=lambda: self.new_id(),
        )

    @classmethod
    def build(cls, settings: Settings) -> Platform:
        engine = make_engine(settings.database_url, threads=settings.request_threads)
        master_key = settings.master_key.get_secret_value() if settings.master_key else None
        keys = KeySource(settings.keys_dir, generate=settings.sandbox, master_key=master_key)
        platform = cls(
            settings=settings,
            engine=engine,
            key_source=keys,
            uow=unit_of_work_factory(engine, retention=settings.retention),
            reader=unit_of_work_factory(engine, read_only=True),
        )
        if settings.sandbox:
            platform.sandbox_clock = SandboxClock(engine)
            platform.clock = platform.sandbox_clock
        return platform

    @property
    def keys(self) -> KeyRing:
        return self.key_source.ring()

    @property
    def intake_keys(self) -> IntakeKeys:
        """The keys order intake uses, from the current ring (a rotation shows within a second)."""
        ring = self.keys
        return IntakeKeys(
            jwe=ring.jwe_keys, fingerprint=ring.fingerprint_key, masters=ring.master_keys
        )

    def simulator(self) -> Simulator:
        return Simulator(
            uow=self.uow,
            clock=self.clock,
            scenarios=SqlScenarioStore(self.engine),
            step=timedelta(seconds=self.settings.simulator_step_seconds),
        )

    def close(self) -> None:
        if self.statistics is not None:
            self.statistics.close()
        self.engine.dispose()

"""Issuer-kit fixtures: the issuer's store on each database, a movable clock, report builders.

The platform under the client tests runs on SQLite only: the kit is the thing tested, and the
platform's own tests cover it on both databases. The issuer's store runs on both.
"""

from __future__ import annotations

import base64
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from issuance.kit import schema
from issuance.kit.store import CardStore, make_engine
from tests.conftest import _postgresql_admin_url

SECRET = "whsec_" + base64.b64encode(b"issuer-kit-test-signing-secret-01").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"issuer-kit-test-signing-secret-02").decode()
ISSUER = "DEMOBANK01"


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """The platform's database for the HTTP tests here: a fresh migrated SQLite file."""
    path = tmp_path / "issuance.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


class Clock:
    """Epoch seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def kit_postgresql() -> Iterator[str | None]:
    """One empty PostgreSQL database per test process for the issuer's store (no migrations:
    the store makes its own tables, per test)."""
    admin_url = _postgresql_admin_url()
    if admin_url is None:
        yield None
        return
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"issuer_kit_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, kit_postgresql: str | None) -> str:
    """An empty database for the issuer's store, SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'issuer.db'}"
    if kit_postgresql is None:
        pytest.skip("no PostgreSQL answers (set ISSUANCE_TEST_DATABASE_URL)")
    return kit_postgresql


@pytest.fixture
def store(store_url: str, clock: Clock) -> Iterator[CardStore]:
    made = CardStore(make_engine(store_url), clock=clock)
    schema.metadata.drop_all(made.engine)  # PostgreSQL: the tables of the previous test
    made.create_schema()
    yield made
    made.engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: Clock) -> Iterator[CardStore]:
    """The store on SQLite only, for tests about the platform rather than the database."""
    made = CardStore(create_engine(f"sqlite:///{tmp_path / 'issuer.db'}"), clock=clock)
    made.create_schema()
    yield made
    made.engine.dispose()


def operation(
    card_id: str,
    step: str,
    *,
    sequence: int | None,
    operation_id: str | None = None,
    status: str = "PENDING",
    start: str = "2026-11-25T08:00:00.000Z",
    end: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    """An operation object as a notification carries it."""
    body: dict[str, Any] = {
        "operationId": operation_id or f"op-{card_id}",
        "operation": "PRODUCE",
        "status": status,
        "startTime": start,
        "cardId": card_id,
        "details": {"status": step, **details},
    }
    if end is not None:
        body["endTime"] = end
    if sequence is not None:
        body["sequence"] = sequence
    return body


def new_card() -> str:
    return f"card-{uuid.uuid4().hex[:12]}"

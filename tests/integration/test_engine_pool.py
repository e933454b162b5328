"""PostgreSQL pool: idle connections are pinged before use, busy ones are not (db/engine.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from issuance.db import engine as engine_module
from issuance.db.engine import make_engine
from tests.conftest import PostgresDatabases

pytestmark = pytest.mark.postgresql


@pytest.fixture
def engine(postgres_databases: PostgresDatabases | None) -> Iterator[Engine]:
    if postgres_databases is None:
        pytest.skip("no PostgreSQL answers (set ISSUANCE_TEST_DATABASE_URL)")
    name = postgres_databases.create()
    built = make_engine(postgres_databases.url_of(name), pool_size=1, max_overflow=0)
    yield built
    built.dispose()
    postgres_databases.drop(name)


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text("SELECT pg_backend_pid()")) or 0)


def terminate(engine: Engine, pid: int) -> None:
    """What a server restart does to a pooled connection, from another connection."""
    admin = create_engine(engine.url, poolclass=NullPool)
    with admin.connect() as connection:
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def killed_after_use(engine: Engine) -> int:
    """The backend of a connection used and returned to the pool, then killed."""
    pid = backend_pid(engine)
    terminate(engine, pid)
    return pid


def test_a_connection_dropped_while_idle_is_replaced_before_use(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_IDLE_SECONDS", 0.05)
    killed = killed_after_use(engine)
    time.sleep(0.1)

    assert backend_pid(engine) != killed  # no error: the ping found it dead


def test_a_connection_just_used_is_not_pinged_and_its_failure_renews_the_pool(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_IDLE_SECONDS", 3600)
    killed = killed_after_use(engine)

    with pytest.raises(OperationalError):  # not pinged: the request fails (a 503 in the API)
        backend_pid(engine)
    assert backend_pid(engine) != killed  # and the next one has a new connection

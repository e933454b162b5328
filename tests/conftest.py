"""Fixtures shared by every layer: settings, databases (SQLite and PostgreSQL), keys, servers.

Every test that touches a database runs twice, on SQLite and on PostgreSQL. Each test gets a fresh
database copied from a migrated template (a file copy for SQLite, `CREATE DATABASE … TEMPLATE`
for PostgreSQL), so tests commit for real and never see each other's rows.

PostgreSQL is found at ISSUANCE_TEST_DATABASE_URL, else at the local default; when none answers
its tests are skipped, unless ISSUANCE_REQUIRE_POSTGRESQL=1 (CI), which turns the skip into a
failure.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from issuance.api.app import create_app
from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.db.migrate import upgrade
from issuance.logging import configure_logging
from issuance.platform import Platform
from issuance.services.configuration import load_config
from issuance.settings import Settings

DEFAULT_POSTGRESQL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# The reliability suite's summary table (tests/reliability/summary.py), printed by the controller.
pytest_plugins = ["tests.reliability.summary"]


@pytest.fixture(autouse=True)
def _no_issuance_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("ISSUANCE_") and name not in {
            "ISSUANCE_TEST_DATABASE_URL",
            "ISSUANCE_REQUIRE_POSTGRESQL",
        }:
            monkeypatch.delenv(name)


def _postgresql_admin_url() -> str | None:
    url = os.environ.get("ISSUANCE_TEST_DATABASE_URL", DEFAULT_POSTGRESQL)
    try:
        engine = create_engine(
            url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # any failure to connect means "no PostgreSQL here"
        if os.environ.get("ISSUANCE_REQUIRE_POSTGRESQL") == "1":
            pytest.fail(
                f"PostgreSQL is required (ISSUANCE_REQUIRE_POSTGRESQL=1) but did not answer: {error}"
            )
        return None
    return url


class PostgresDatabases:
    """Creates per-test databases from one migrated template per test process."""

    def __init__(self, admin_url: str, worker: str) -> None:
        self.admin_url = admin_url
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.template = f"issuance_template_{worker}_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.template}"'))
        upgrade(self.url_of(self.template))

    def url_of(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def create(self) -> str:
        name = f"issuance_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        self.drop(self.template)
        self.admin.dispose()


@pytest.fixture(scope="session")
def worker_id_label(request: pytest.FixtureRequest) -> str:
    return str(getattr(request.config, "workerinput", {}).get("workerid", "main"))


@pytest.fixture(scope="session")
def postgres_databases(worker_id_label: str) -> Iterator[PostgresDatabases | None]:
    admin_url = _postgresql_admin_url()
    if admin_url is None:
        yield None
        return
    databases = PostgresDatabases(admin_url, worker_id_label)
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_databases: PostgresDatabases | None,
) -> Iterator[str]:
    """A fresh, migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "issuance.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if postgres_databases is None:
        pytest.skip("no PostgreSQL answers (set ISSUANCE_TEST_DATABASE_URL)")
    name = postgres_databases.create()
    yield postgres_databases.url_of(name)
    postgres_databases.drop(name)


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture
def settings(database_url: str, keys_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        keys_dir=keys_dir,
        sandbox=True,
        simulator=False,
        deliver_in_server=False,
    )


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    """The platform on a fresh database with the sandbox configuration loaded."""
    built = Platform.build(settings)
    load_config(read_config(SANDBOX_CONFIG), uow=built.uow())
    yield built
    built.close()


@dataclass
class Server:
    base_url: str
    platform: Platform


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns the signals
        pass


@pytest.fixture
def server(settings: Settings, platform: Platform) -> Iterator[Server]:
    """The real app behind a real uvicorn on a free loopback port, for HTTP tests."""
    configure_logging(json_output=True)  # the production set-up, redaction included
    config = uvicorn.Config(
        create_app(settings, platform=platform),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
    )
    instance = _ThreadedServer(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = instance.servers[0].sockets[0].getsockname()[1]
    yield Server(base_url=f"http://127.0.0.1:{port}", platform=platform)
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client

"""PostgreSQL restarted under load: 503 DATABASE_UNAVAILABLE (with Retry-After) while it is down,
never a 500, and the API serves again by itself once it is back.

The shared server on :5432 is left alone: the test starts a private cluster of its own (initdb
as the `postgres` user, in a temporary directory, on a free port, trust authentication) and
stops and starts it with pg_ctl while issuer clients keep ordering through the API process.
"""

from __future__ import annotations

import contextlib
import glob
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.db.migrate import upgrade
from issuance.platform import Platform
from issuance.services.configuration import load_config
from issuance.settings import Settings
from tests.factories import DEMO, card_data, encrypt, new_card_id, order_body
from tests.reliability.harness import Processes, free_port, orders_by_request, token, wait_for
from tests.reliability.summary import Row, record

pytestmark = pytest.mark.postgresql

OUTAGE = 4.0  # seconds the database stays down


class Cluster:
    """A throw-away PostgreSQL cluster owned by the `postgres` user."""

    def __init__(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not binaries or shutil.which("runuser") is None:
            pytest.skip("no PostgreSQL binaries (/usr/lib/postgresql/*/bin) or no runuser")
        self.bin = Path(binaries[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="issuance-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/issuance"

    def _run(self, *argv: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-o", options,
            "-l", str(self.dir / "log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"
        )

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    try:
        made.init()
        made.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        made.remove()
        pytest.skip(f"a private PostgreSQL cluster could not be started: {error}")
    admin = create_engine(made.url.replace("/issuance", "/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE DATABASE issuance"))
    admin.dispose()
    yield made
    made.remove()


class Load:
    """Issuer clients ordering new cards without a pause, and one reading their status (on
    PostgreSQL the API reads status on its own connections: db/status_reads.py); every answer
    counted by status/code."""

    def __init__(self, base_url: str, threads: int) -> None:
        self.base_url = base_url
        self.answers: Counter[tuple[int, str]] = Counter()
        self.reads: Counter[tuple[int, str]] = Counter()
        self.accepted: dict[str, tuple[str, str]] = {}
        self.bad_503: list[str] = []  # a 503 without the code or Retry-After
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.jwks = httpx.get(f"{base_url}/.well-known/jwks.json", timeout=30).json()
        self.bearer = token(base_url)
        self.pool = [threading.Thread(target=self._run) for _ in range(threads)]
        self.pool.append(threading.Thread(target=self._read))

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            while not self.stopping.is_set():
                self._one(http, new_card_id())

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.bearer}"}
        with httpx.Client(base_url=self.base_url, timeout=30, headers=headers) as http:
            while not self.stopping.is_set():
                with self.lock:
                    cards = list(self.accepted)[-20:]
                if not cards:
                    time.sleep(0.05)
                    continue
                path = f"/banking/v1/issuers/{DEMO}/physicalCards/{cards[0]}/productionStatus"
                try:
                    answer = http.get(path)
                except httpx.TransportError:
                    continue
                code = answer.json().get("errorCode", "") if answer.status_code != 200 else ""
                with self.lock:
                    self.reads[(answer.status_code, code)] += 1
                    if answer.status_code == 503 and not answer.headers.get("Retry-After"):
                        self.bad_503.append(answer.text)
                time.sleep(0.02)

    def read_count(self) -> int:
        with self.lock:
            return self.reads[(200, "")]

    def _one(self, http: httpx.Client, card_id: str) -> None:
        body = order_body(encrypt(card_data(), self.jwks))
        path = f"/banking/v1/issuers/{DEMO}/physicalCards/{card_id}/operations:production"
        while not self.stopping.is_set():
            try:
                answer = http.post(
                    path, json=body, headers={"Authorization": f"Bearer {self.bearer}"}
                )
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            code = answer.json().get("errorCode", "") if answer.status_code != 202 else ""
            with self.lock:
                self.answers[(answer.status_code, code)] += 1
                if answer.status_code == 202:
                    self.accepted[card_id] = (body["issuerRequestId"], answer.json()["operationId"])
                    return
                if answer.status_code == 503 and (
                    code != "DATABASE_UNAVAILABLE" or not answer.headers.get("Retry-After")
                ):
                    self.bad_503.append(answer.text)
            if answer.status_code != 503:
                return  # any other refusal: counted, and the card given up
            time.sleep(0.2)  # Retry-After is 5 s; a client in a hurry retries sooner

    def accepted_count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def __enter__(self) -> Load:
        for thread in self.pool:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.pool:
            thread.join(timeout=60)


def test_a_database_restart_is_503_while_down_and_heals_alone(
    cluster: Cluster,
    keys_dir: Path,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    upgrade(cluster.url)
    settings = Settings(database_url=cluster.url, keys_dir=keys_dir, sandbox=True)
    platform = Platform.build(settings)
    load_config(read_config(SANDBOX_CONFIG), uow=platform.uow())
    processes = Processes(cluster.url, keys_dir, tmp_path)
    processes.extra_environment["ISSUANCE_SIMULATOR"] = "false"
    try:
        processes.start_api()
        with Load(processes.base_url, threads=4) as load:
            assert wait_for(lambda: load.accepted_count() >= 10, timeout=60)
            cluster.stop()
            down_at = time.monotonic()
            time.sleep(OUTAGE)
            during = sum(n for (status, _), n in load.answers.items() if status == 503)
            cluster.start()
            before, read_before = load.accepted_count(), load.read_count()
            assert wait_for(lambda: load.accepted_count() >= before + 10, timeout=60)
            recovered = time.monotonic() - down_at - OUTAGE
            assert wait_for(lambda: load.read_count() >= read_before + 10, timeout=30)
        assert processes.api is not None
        assert processes.api.poll() is None, "the API died with its database"
    finally:
        processes.close()
    stored = orders_by_request(platform)
    platform.close()
    missing = [c for c, (request, op) in load.accepted.items() if stored.get(request) != [(c, op)]]
    errors = sum(n for (status, code), n in load.answers.items() if status >= 500 and status != 503)
    record(
        record_property,
        Row(
            "database restart (postgresql)",
            len(load.accepted),
            0,
            len(missing),
            0,
            errors,
            f"{during}x 503 DATABASE_UNAVAILABLE in a {OUTAGE:g} s outage,"
            f" serving again {recovered:.1f} s after; status reads:"
            f" {load.reads[(200, '')]} answered, {load.reads[(503, 'DATABASE_UNAVAILABLE')]}x 503",
        ),
    )
    assert errors == 0, load.answers  # a 500 while the database was down, say
    assert during > 0, "no request reached the API while the database was down"
    assert load.bad_503 == []
    assert {status for status, _ in load.answers} <= {202, 503}, load.answers
    assert set(load.reads) <= {(200, ""), (503, "DATABASE_UNAVAILABLE")}, load.reads
    assert missing == []

"""Console test helpers: an operator signed in over real HTTP, CSRF tokens read from the forms."""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, insert

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.db.models import OrderRow
from issuance.domain.parties import NotificationEndpoint
from issuance.platform import Platform
from issuance.services.configuration import load_config
from tests.conftest import Server
from tests.factories import DEMO, OPERATOR

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page (every form of a session carries the same)."""
    found = _CSRF.search(html)
    assert found is not None, "no form with a CSRF token on this page"
    return found.group(1)


def sign_in(http: httpx.Client, operator_id: str = OPERATOR[0], secret: str = OPERATOR[1]) -> str:
    """Sign in through the login form; the session's CSRF token."""
    form = http.get("/console/login")
    assert form.status_code == 200, form.text
    answer = http.post(
        "/console/login",
        data={"operator_id": operator_id, "secret": secret, "csrf": csrf_of(form.text)},
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(http.get("/console").text)


@pytest.fixture
def console(server: Server) -> Iterator[httpx.Client]:
    """A browser-like client signed in as the sandbox operator; redirects are not followed."""
    with httpx.Client(base_url=server.base_url, timeout=30, follow_redirects=False) as client:
        sign_in(client)
        yield client


def insert_orders(
    engine: Engine,
    count: int,
    *,
    start: datetime | None = None,
    status: str = "CARD_PROD_REQUESTED",
    issuer_id: str = DEMO,
    **columns: object,
) -> list[str]:
    """`count` orders written straight into the table, one minute apart (newest last): search
    reads rows, so a page test needs many rows more than it needs real intake."""
    first = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    rows = []
    for index in range(count):
        moment = first + timedelta(minutes=index)
        rows.append(
            {
                "operation_id": str(uuid.uuid4()),
                "issuer_id": issuer_id,
                "card_id": f"bulk-{uuid.uuid4().hex[:12]}",
                "active_card_id": None,
                "issuer_request_id": f"req-{uuid.uuid4().hex}",
                "request_fingerprint": "0" * 64,
                "consumer_id": f"consumer-{index}",
                "status": "PENDING",
                "production_status": status,
                "production_site": "PC-PARIS",
                "start_time": moment,
                "updated_at": moment,
                "due_date": moment + timedelta(days=1),
                "hold": "NONE",
                "materials": [],
                "request": {},
                "version": 1,
                **columns,
            }
        )
    with engine.begin() as connection:
        connection.execute(insert(OrderRow), rows)
    return [str(row["operation_id"]) for row in rows]


def point_demobank_at(platform: Platform, url: str) -> None:
    """DEMOBANK01 notifies one endpoint, `main`, at `url` (a test receiver)."""
    sandbox = read_config(SANDBOX_CONFIG)
    endpoint = NotificationEndpoint(
        endpoint_id="main",
        base_url=url,
        signing_secrets=("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),),
        timeout_seconds=5,
    )
    issuers = tuple(
        i.model_copy(update={"notification_endpoints": (endpoint,)}) if i.issuer_id == DEMO else i
        for i in sandbox.issuers
    )
    load_config(sandbox.model_copy(update={"issuers": issuers}), uow=platform.uow())

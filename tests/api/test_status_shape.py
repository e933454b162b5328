"""productionStatus is answered without FastAPI's response model: its body must still be one."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from issuance.contract.operations import Operations
from issuance.db.status_reads import APPLICATION_NAME
from tests.conftest import Server
from tests.factories import ActingIssuerClient, expect_ok, new_card_id, order_body


def test_status_body_is_exactly_the_documented_model(http: httpx.Client) -> None:
    """A cancelled order (end time, error) then a held one: every field is the model's, none null."""
    issuer = ActingIssuerClient(http)
    card_id = new_card_id()
    for answer in (
        issuer.order(card_id, order_body(issuer.encrypt())),
        issuer.cancel(card_id),
        issuer.order(card_id, order_body(issuer.encrypt())),
        issuer.hold(card_id),
    ):
        assert answer.status_code in (200, 202), answer.text

    body = expect_ok(issuer.status(card_id))

    first, second = body["operations"]
    assert first["status"] == "FAILED"
    assert {"endTime", "errorCode"} <= set(first)
    assert second["details"]["onHold"] == "ISSUER"
    assert (
        Operations.model_validate(body).model_dump(mode="json", by_alias=True, exclude_none=True)
        == body
    )


@pytest.mark.postgresql
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_status_is_read_by_the_servers_own_connections(
    http: httpx.Client, server: Server
) -> None:
    """The served app reads status on its event loop (db/status_reads.py), not in a thread."""
    engine = server.platform.engine
    issuer = ActingIssuerClient(http)
    card_id = new_card_id()
    assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
    read = text(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
        "AND datname = current_database() AND query LIKE '%FROM orders JOIN%'"
    )

    assert [op["cardId"] for op in expect_ok(issuer.status(card_id))["operations"]] == [card_id]
    with engine.connect() as connection:
        assert connection.execute(read, {"name": APPLICATION_NAME}).scalar_one() >= 1

"""`IssuerClient`: the async client run on a private loop, for code that has none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from issuance.kit import AsyncIssuerClient, IssuerClient, NotFound, reconcile_blocking
from issuance.kit.store import CardStore
from tests.conftest import Server
from tests.factories import DEMO, card_data, new_card_id
from tests.kit.test_client import CREDENTIALS, FAST, order_fields


@pytest.fixture
def blocking(server: Server) -> Iterator[IssuerClient]:
    with IssuerClient(server.base_url, DEMO, CREDENTIALS, retry=FAST) as made:
        yield made


def test_the_blocking_client_is_the_same_client(blocking: IssuerClient) -> None:
    card_id = new_card_id()
    placed = blocking.order_card(card_id, order_fields(), card_data=card_data())
    [operation] = blocking.production_status(card_id)
    assert operation.operation_id == placed.operation_id
    with pytest.raises(NotFound):
        blocking.production_status(new_card_id())
    assert blocking.order_card.__doc__ == AsyncIssuerClient.order_card.__doc__


def test_a_library_reconcile_without_an_event_loop(
    blocking: IssuerClient, sqlite_store: CardStore
) -> None:
    report = reconcile_blocking(sqlite_store, blocking)
    assert report.issuer_id == DEMO
    assert report.remaining_gaps == []

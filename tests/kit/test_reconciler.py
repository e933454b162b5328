"""The reconciler against the real platform: a store that missed notifications is made whole.

The notifications the store did receive are taken from the platform's own journal (the very
operation objects delivery sends); the bureau operator moves orders on without the store hearing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from typer.testing import CliRunner

from issuance.kit import AsyncIssuerClient, CardChange, ChangeFeedUnavailable, reconcile
from issuance.kit.cli import app
from issuance.kit.gaps import SequenceGap, sequence_gaps
from issuance.kit.store import CardStore, Incoming
from tests.conftest import Server
from tests.factories import DEMO, OperatorClient, card_data, journal, new_card_id
from tests.kit.conftest import Clock
from tests.kit.test_client import CREDENTIALS, FAST, order_fields

DAY = 86_400.0


class Handler:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int | None]] = []

    def __call__(self, change: CardChange) -> None:
        self.seen.append((change.status, change.operation.sequence))


@pytest_asyncio.fixture
async def client(server: Server) -> AsyncIterator[AsyncIssuerClient]:
    async with AsyncIssuerClient(server.base_url, DEMO, CREDENTIALS, retry=FAST) as made:
        yield made


@pytest.fixture
def operator(http: httpx.Client) -> OperatorClient:
    return OperatorClient(http)


async def _ordered(client: AsyncIssuerClient, operator: OperatorClient, *actions: str) -> str:
    card_id = new_card_id()
    await client.order_card(card_id, order_fields(), card_data=card_data())
    for action in actions:
        assert operator.act(card_id, action).status_code == 200
    return card_id


def _deliver(store: CardStore, server: Server, card_id: str, *sequences: int) -> None:
    """Hand the store the notifications of these sequences only (the others were lost)."""
    events = {entry.sequence: entry.payload for entry in journal(server.platform.engine, card_id)}
    store.record(DEMO, [Incoming.of(events[sequence]) for sequence in sequences])


def _same_as_platform(store: CardStore, platform_view: list[dict[str, object]]) -> None:
    mine = [op.model_dump(by_alias=True, exclude_none=True) for op in store.operations(DEMO)]
    assert mine == platform_view


@pytest.mark.asyncio
async def test_a_sequence_hole_is_filled_from_production_status(
    server: Server, client: AsyncIssuerClient, operator: OperatorClient, sqlite_store: CardStore
) -> None:
    card_id = await _ordered(client, operator, "prepare", "queue")
    _deliver(sqlite_store, server, card_id, 1, 3)  # 2 was lost
    assert operator.act(card_id, "start").status_code == 200  # 4: not delivered yet either
    handler = Handler()

    report = await reconcile(sqlite_store, client, handler=handler, use_feed=False)

    assert report.sequence_gaps == [SequenceGap(card_id, [2])]
    assert (report.cards_checked, report.remaining_gaps, report.changes) == ([card_id], [], 1)
    assert handler.seen == [
        ("CARD_PROD_REQUESTED", 1),
        ("CARD_PROD_READY", 3),
        ("CARD_PROD_ONGOING", 4),
    ]
    platform_view = [
        op.model_dump(by_alias=True, exclude_none=True)
        for op in await client.production_status(card_id)
    ]
    _same_as_platform(sqlite_store, platform_view)
    again = await reconcile(sqlite_store, client, handler=handler, use_feed=False)
    assert (again.sequence_gaps, again.cards_checked, again.handler_calls) == ([], [], 0)


@pytest.mark.asyncio
async def test_an_order_silent_past_its_due_date_is_asked_about(
    server: Server,
    client: AsyncIssuerClient,
    operator: OperatorClient,
    sqlite_store: CardStore,
    clock: Clock,
) -> None:
    card_id = await _ordered(client, operator)
    _deliver(sqlite_store, server, card_id, 1)
    assert operator.act(card_id, "prepare").status_code == 200  # never notified
    [operation] = sqlite_store.operations(DEMO, card_id)
    assert operation.details.due_date is not None
    assert (await reconcile(sqlite_store, client, use_feed=False)).silent_orders == []

    clock.advance(10 * DAY)  # long past the due date, and nothing heard since
    handler = Handler()
    report = await reconcile(sqlite_store, client, handler=handler, use_feed=False)
    assert [order.card_id for order in report.silent_orders] == [card_id]
    assert report.cards_checked == [card_id]
    assert handler.seen[-1] == ("DATA_PREPARED", 2)
    # just asked: not silent again until a day without news has passed
    assert (await reconcile(sqlite_store, client, use_feed=False)).silent_orders == []


@pytest.mark.asyncio
async def test_a_sequence_hole_is_filled_from_the_change_feed(
    server: Server, client: AsyncIssuerClient, operator: OperatorClient, sqlite_store: CardStore
) -> None:
    try:
        await client.changes(limit=1)
    except ChangeFeedUnavailable:
        pytest.skip("the platform does not serve the change feed (/operations answers 404) yet")
    card_id = await _ordered(client, operator, "prepare", "queue", "start")
    _deliver(sqlite_store, server, card_id, 1, 4)
    handler = Handler()

    report = await reconcile(sqlite_store, client, handler=handler)

    assert report.feed == "read"
    assert report.sequence_gaps == [SequenceGap(card_id, [2, 3])]
    assert report.remaining_gaps == []
    assert report.cards_checked == []
    assert sequence_gaps(sqlite_store, DEMO) == []
    assert [sequence for _, sequence in handler.seen if sequence] == [1, 4]  # 2, 3 are stale
    again = await reconcile(sqlite_store, client, handler=handler)
    assert (again.changes, again.feed_operations) == (0, 0)
    sqlite_store.record(DEMO, [], feed_cursor="not-a-cursor-of-this-feed")  # a reset platform
    restarted = await reconcile(sqlite_store, client, handler=handler)
    assert restarted.feed_operations >= 4  # read again from the start
    assert restarted.changes == 0


ISSUANCE_ISSUER = Path(sys.executable).parent / "issuance-issuer"


def _options(server: Server, database: Path) -> list[str]:
    return [
        "--base-url",
        server.base_url,
        "--issuer-id",
        DEMO,
        "--client-id",
        "demobank01",
        "--client-secret",
        "sandbox-secret-demobank01",
        "--database-url",
        f"sqlite:///{database}",
    ]


def _cli(server: Server, database: Path, *extra: str) -> tuple[int, str]:
    """The installed console script, as cron would run it: its exit status and its stdout."""
    result = subprocess.run(
        [str(ISSUANCE_ISSUER), "reconcile", *_options(server, database), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout


def test_the_cli_reports_in_json_and_fails_while_holes_remain(
    server: Server, tmp_path: Path
) -> None:
    database = tmp_path / "cli-issuer.db"
    code, output = _cli(server, database, "--json", "--no-feed")
    assert code == 0, output
    assert json.loads(output)["remaining_gaps"] == []

    store = CardStore(f"sqlite:///{database}")
    unknown = new_card_id()  # notified, but unknown to this platform: nobody can fill its hole
    store.record(
        DEMO,
        [
            Incoming.of({**_operation(unknown), "sequence": 1}),
            Incoming.of({**_operation(unknown), "sequence": 3}),
        ],
    )
    store.engine.dispose()
    code, output = _cli(server, database, "--json", "--no-feed")
    assert code == 1, output
    report = json.loads(output)
    assert report["cards_unknown"] == [unknown]
    assert report["remaining_gaps"] == [{"card_id": unknown, "missing": [2]}]
    table = CliRunner().invoke(app, ["reconcile", *_options(server, database), "--no-feed"])
    assert table.exit_code == 1
    assert "holes remaining" in table.output


def _operation(card_id: str) -> dict[str, object]:
    return {
        "operationId": f"op-{card_id}",
        "status": "PENDING",
        "startTime": "2026-11-25T08:00:00.000Z",
        "cardId": card_id,
        "details": {"status": "CARD_PROD_REQUESTED"},
    }

"""The notification receiver alone, fed hand-built and hostile requests.

Signatures are made with `standardwebhooks` (the spec's reference library) and with the
platform's own signing, never with the code under test. Every answer to a bad request is a 4xx
with D1's error body; nothing a sender can put in a request makes it answer 500.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from standardwebhooks import Webhook

from issuance.delivery.signing import signature_headers
from issuance.kit import CardChange, CardStore, Receiver, create_receiver_app
from issuance.kit.gaps import sequence_gaps
from tests.kit.conftest import ISSUER, OTHER_SECRET, SECRET, Clock, new_card, operation

pytestmark = pytest.mark.asyncio
PATH = f"/notifications/d1/v2/issuers/{ISSUER}/cards"


def signed(
    body: bytes, *, secret: str = SECRET, message_id: str | None = None, at: float | None = None
) -> dict[str, str]:
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    moment = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
    try:
        signature = Webhook(secret).sign(message_id, moment, body.decode())
    except UnicodeDecodeError:  # the reference library signs text only
        signature = signature_headers(
            (secret,), message_id=message_id, timestamp=int(moment.timestamp()), body=body
        )["webhook-signature"]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def payload(*operations: dict[str, Any]) -> bytes:
    return json.dumps({"operations": list(operations)}).encode()


class Recorder:
    """A handler that remembers what it was given."""

    def __init__(self) -> None:
        self.changes: list[CardChange] = []
        self.lock = threading.Lock()

    def __call__(self, change: CardChange) -> None:
        with self.lock:
            self.changes.append(change)

    @property
    def seen(self) -> list[tuple[str, str, int | None]]:
        return [(c.card_id, c.status, c.operation.sequence) for c in self.changes]


@pytest.fixture
def handler() -> Recorder:
    return Recorder()


def client_of(app: FastAPI) -> httpx.AsyncClient:
    """In-process HTTP: the answer returns once the app is done, background tasks included."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://issuer")


@pytest_asyncio.fixture
async def http(
    store: CardStore, handler: Recorder, clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    receiver = Receiver(
        store, handler, issuer_ids={ISSUER}, secrets=[SECRET, OTHER_SECRET], clock=clock
    )
    async with client_of(create_receiver_app(receiver)) as client:
        yield client


async def post(http: httpx.AsyncClient, body: bytes, **signing: Any) -> int:
    answer = await http.post(PATH, content=body, headers=signed(body, **signing))
    return answer.status_code


# --- authenticity ---


async def test_a_signed_notification_is_stored_and_handled_once(
    http: httpx.AsyncClient, store: CardStore, handler: Recorder
) -> None:
    card = new_card()
    assert await post(http, payload(operation(card, "CARD_PROD_REQUESTED", sequence=1))) == 204
    assert handler.seen == [(card, "CARD_PROD_REQUESTED", 1)]
    assert handler.changes[0].previous is None
    assert [op.details.status for op in store.operations(ISSUER, card)] == ["CARD_PROD_REQUESTED"]


async def test_the_platforms_own_signature_with_two_secrets_is_accepted(
    http: httpx.AsyncClient, handler: Recorder
) -> None:
    body = payload(operation(new_card(), "CARD_PROD_REQUESTED", sequence=1))
    rotating = ("whsec_" + "bmV3LXNlY3JldC1ub3Qta25vd24tdG8tdGhlLXJlY2VpdmVy", OTHER_SECRET)
    headers = signature_headers(
        rotating, message_id="msg_rotation", timestamp=int(datetime.now(UTC).timestamp()), body=body
    )
    assert (await http.post(PATH, content=body, headers=headers)).status_code == 204
    assert len(handler.changes) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h: {**h, "webhook-signature": "v1,AAAA" + h["webhook-signature"][7:]},
        lambda h: {k: v for k, v in h.items() if k != "webhook-signature"},
        lambda h: {k: v for k, v in h.items() if k != "webhook-id"},
        lambda h: {**h, "webhook-id": "msg_other"},
        lambda h: {**h, "webhook-timestamp": "yesterday"},
        lambda h: {**h, "webhook-signature": "v2,abc v1,!!!notbase64"},
        lambda h: signed(b"{}", message_id=h["webhook-id"]),  # a signature of another body
        lambda h: {**h, **signed(b"x", secret="whsec_" + "c29tZW9uZS1lbHNl")},
    ],
    ids=[
        "forged",
        "unsigned",
        "no-id",
        "id-changed",
        "bad-timestamp",
        "garbage",
        "other-body",
        "wrong-secret",
    ],
)
async def test_a_message_not_signed_by_the_platform_is_refused(
    http: httpx.AsyncClient, store: CardStore, handler: Recorder, tamper: Any
) -> None:
    card = new_card()
    body = payload(operation(card, "CARD_PROD_REQUESTED", sequence=1))
    answer = await http.post(PATH, content=body, headers=tamper(signed(body)))
    assert answer.status_code == 401
    assert answer.json()["errorCode"] == "UNAUTHORIZED"
    assert handler.changes == []
    assert store.operations(ISSUER, card) == []


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
async def test_a_timestamp_outside_the_window_is_refused(
    http: httpx.AsyncClient, handler: Recorder, clock: Clock, skew: int
) -> None:
    body = payload(operation(new_card(), "CARD_PROD_REQUESTED", sequence=1))
    assert await post(http, body, at=clock.now + skew) == 401
    inside = 290 if skew > 0 else -290
    assert await post(http, body, at=clock.now + inside) == 204  # inside the 5-minute window
    assert len(handler.changes) == 1


async def test_another_issuers_path_is_not_served(http: httpx.AsyncClient) -> None:
    body = payload(operation(new_card(), "CARD_PROD_REQUESTED", sequence=1))
    answer = await http.post(
        "/notifications/d1/v2/issuers/OTHERBNK02/cards", content=body, headers=signed(body)
    )
    assert answer.status_code == 404


async def test_a_d1_bearer_token_can_stand_in_for_signatures(
    store: CardStore, handler: Recorder
) -> None:
    receiver = Receiver(store, handler, issuer_ids={ISSUER}, authorize=lambda t: t == "good")
    body = payload(operation(new_card(), "CARD_PROD_REQUESTED", sequence=None))
    async with client_of(create_receiver_app(receiver)) as client:
        assert (await client.post(PATH, content=body)).status_code == 401
        bad = await client.post(PATH, content=body, headers={"authorization": "Bearer bad"})
        assert bad.status_code == 401
        good = await client.post(PATH, content=body, headers={"authorization": "Bearer good"})
        assert good.status_code == 204
    assert len(handler.changes) == 1


async def test_a_receiver_without_any_authentication_cannot_be_built(store: CardStore) -> None:
    with pytest.raises(ValueError, match="secrets"):
        Receiver(store, issuer_ids={ISSUER})


# --- duplicates, replays, order ---


async def test_a_replayed_message_is_acknowledged_and_ignored(
    http: httpx.AsyncClient, store: CardStore, handler: Recorder, clock: Clock
) -> None:
    card = new_card()
    body = payload(operation(card, "CARD_PROD_REQUESTED", sequence=1))
    assert await post(http, body, message_id="msg_once") == 204
    assert (
        await post(http, body, message_id="msg_once", at=clock.now + 60) == 204
    )  # the sender's retry
    # even a different body under a processed id is a retry of that message: nothing happens
    later = payload(operation(card, "DATA_PREPARED", sequence=2))
    assert await post(http, later, message_id="msg_once") == 204
    assert handler.seen == [(card, "CARD_PROD_REQUESTED", 1)]
    assert [op.details.status for op in store.operations(ISSUER, card)] == ["CARD_PROD_REQUESTED"]


async def test_a_duplicate_operation_in_a_new_message_changes_nothing(
    http: httpx.AsyncClient, handler: Recorder
) -> None:
    card = new_card()
    report = operation(card, "DATA_PREPARED", sequence=2)
    assert (
        await post(http, payload(operation(card, "CARD_PROD_REQUESTED", sequence=1), report)) == 204
    )
    assert await post(http, payload(report, report)) == 204
    assert handler.seen == [(card, "CARD_PROD_REQUESTED", 1), (card, "DATA_PREPARED", 2)]


async def test_out_of_order_sequences_apply_only_the_newest(
    http: httpx.AsyncClient, store: CardStore, handler: Recorder
) -> None:
    card = new_card()
    assert await post(http, payload(operation(card, "CARD_PROD_REQUESTED", sequence=1))) == 204
    assert await post(http, payload(operation(card, "CARD_PROD_READY", sequence=3))) == 204
    assert sequence_gaps(store, ISSUER)[0].missing == [2]
    assert await post(http, payload(operation(card, "DATA_PREPARED", sequence=2))) == 204  # late
    assert sequence_gaps(store, ISSUER) == []
    assert handler.seen == [(card, "CARD_PROD_REQUESTED", 1), (card, "CARD_PROD_READY", 3)]
    assert handler.changes[1].previous is not None
    assert handler.changes[1].previous.details.status == "CARD_PROD_REQUESTED"
    [stored] = store.operations(ISSUER, card)
    assert (stored.details.status, stored.sequence) == ("CARD_PROD_READY", 3)


async def test_without_sequences_a_shipped_card_never_goes_back(
    http: httpx.AsyncClient, store: CardStore, handler: Recorder
) -> None:
    """A real D1 sends no sequence: endTime and the final state decide."""
    card = new_card()
    ongoing = operation(card, "CARD_PROD_ONGOING", sequence=None)
    shipped = operation(
        card, "CARD_SHIPPED", sequence=None, status="SUCCESSFUL", end="2026-11-26T16:00:00.000Z"
    )
    assert await post(http, payload(ongoing)) == 204
    assert await post(http, payload(shipped)) == 204
    assert await post(http, payload(ongoing)) == 204  # a duplicate, late
    assert (
        await post(http, payload(operation(card, "CARD_PROD_DONE", sequence=None))) == 204
    )  # stale
    assert await post(http, payload(shipped)) == 204
    assert [status for _, status, _ in handler.seen] == ["CARD_PROD_ONGOING", "CARD_SHIPPED"]
    [stored] = store.operations(ISSUER, card)
    assert stored.details.status == "CARD_SHIPPED"


async def test_without_sequences_the_forward_path_is_not_walked_back(
    http: httpx.AsyncClient, handler: Recorder
) -> None:
    card = new_card()
    assert await post(http, payload(operation(card, "CARD_PROD_READY", sequence=None))) == 204
    assert await post(http, payload(operation(card, "DATA_PREPARED", sequence=None))) == 204
    assert await post(http, payload(operation(card, "CARD_PROD_EXCEPTION", sequence=None))) == 204
    assert [s for _, s, _ in handler.seen] == ["CARD_PROD_READY", "CARD_PROD_EXCEPTION"]


async def test_a_newer_sequence_with_the_same_state_is_not_a_change(
    http: httpx.AsyncClient, store: CardStore, handler: Recorder
) -> None:
    card = new_card()
    assert await post(http, payload(operation(card, "CARD_PROD_REQUESTED", sequence=1))) == 204
    assert await post(http, payload(operation(card, "CARD_PROD_REQUESTED", sequence=2))) == 204
    assert len(handler.changes) == 1
    assert store.operations(ISSUER, card)[0].sequence == 2


async def test_unknown_status_values_and_fields_are_kept(
    http: httpx.AsyncClient, store: CardStore, handler: Recorder
) -> None:
    card = new_card()
    future = operation(card, "CARD_TELEPORTED", sequence=1, status="PAUSED", teleporter="T-1000")
    future["somethingNew"] = {"nested": [1, 2]}
    assert await post(http, payload(future)) == 204
    [change] = handler.changes
    assert (change.status, change.operation.status) == ("CARD_TELEPORTED", "PAUSED")
    assert change.raw["somethingNew"] == {"nested": [1, 2]}
    assert change.raw["details"]["teleporter"] == "T-1000"
    assert store.operations(ISSUER, card)[0].details.status == "CARD_TELEPORTED"


async def test_several_cards_and_operations_in_one_message(
    http: httpx.AsyncClient, store: CardStore, handler: Recorder
) -> None:
    first, second = new_card(), new_card()
    reorder = operation(first, "CARD_PROD_REQUESTED", sequence=3, operation_id="op-again")
    body = payload(
        operation(
            first, "CARD_SHIPPED", sequence=2, status="SUCCESSFUL", end="2026-11-26T16:00:00.000Z"
        ),
        operation(second, "CARD_PROD_REQUESTED", sequence=1),
        reorder,
    )
    assert await post(http, body) == 204
    assert len(handler.changes) == 3
    assert {op.operation_id for op in store.operations(ISSUER, first)} == {
        f"op-{first}",
        "op-again",
    }


async def test_the_platforms_ping_is_acknowledged(
    http: httpx.AsyncClient, handler: Recorder
) -> None:
    assert await post(http, b'{"operations": []}') == 204
    assert handler.changes == []


# --- malformed bodies: 4xx, never 500 ---

GOOD = operation("card-1", "CARD_PROD_REQUESTED", sequence=1)


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"{not json", "INVALID_JSON", None),
        (b"\xff\xfe\x00garbage", "INVALID_JSON", None),
        (b"[" * 100_000 + b"]" * 100_000, "INVALID_JSON", None),
        (b"", "INVALID_JSON", None),
        (b"[]", "FIELD_INVALID_FORMAT", "operations"),
        (b'{"operations": {}}', "FIELD_INVALID_FORMAT", "operations"),
        (b'{"ops": []}', "FIELD_INVALID_FORMAT", "operations"),
        (b'{"operations": [1]}', "FIELD_INVALID_FORMAT", "operations[0]"),
        (payload(_without("operationId")), "FIELD_MISSING", "operations[0].operationId"),
        (payload(_without("cardId")), "FIELD_MISSING", "operations[0].cardId"),
        (payload({**GOOD, "details": "shipped"}), "FIELD_INVALID_FORMAT", "operations[0].details"),
        (payload({**GOOD, "details": {}}), "FIELD_MISSING", "operations[0].details.status"),
        (payload({**GOOD, "sequence": "two"}), "FIELD_INVALID_FORMAT", "operations[0].sequence"),
        (payload({**GOOD, "sequence": 0}), "FIELD_INVALID_VALUE", "operations[0].sequence"),
        (payload({**GOOD, "sequence": True}), "FIELD_INVALID_VALUE", "operations[0].sequence"),
        (payload({**GOOD, "operationId": "x" * 65}), "FIELD_INVALID_FORMAT", None),
        (payload({**GOOD, "cardId": ""}), "FIELD_INVALID_FORMAT", "operations[0].cardId"),
        (payload({**GOOD, "status": None}), "FIELD_INVALID_FORMAT", "operations[0].status"),
        (payload(GOOD, {**GOOD, "startTime": 5}), "FIELD_INVALID_FORMAT", None),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_a_malformed_body_is_a_400_and_stores_nothing(
    http: httpx.AsyncClient,
    store: CardStore,
    handler: Recorder,
    body: bytes,
    code: str,
    field: str | None,
) -> None:
    answer = await http.post(PATH, content=body, headers=signed(body))
    assert answer.status_code == 400, answer.text
    assert answer.json()["errorCode"] == code
    if field is not None:
        assert answer.json()["field"] == field
    assert handler.changes == []
    assert store.operations(ISSUER) == []


async def test_a_body_over_the_limit_is_a_413(store: CardStore) -> None:
    receiver = Receiver(store, issuer_ids={ISSUER}, secrets=[SECRET], max_body_bytes=1000)
    body = payload(*[GOOD] * 20)
    async with client_of(create_receiver_app(receiver)) as client:
        answer = await client.post(PATH, content=body, headers=signed(body))
        assert answer.status_code == 413


async def test_odd_but_valid_times_do_not_break_the_rules(
    http: httpx.AsyncClient, handler: Recorder
) -> None:
    card = new_card()
    assert await post(http, payload(operation(card, "X", sequence=None, start="not a time"))) == 204
    assert await post(http, payload(operation(card, "Y", sequence=None, start="2026-11-25"))) == 204
    assert len(handler.changes) == 2

"""Zero hits: card data sent to the platform appears nowhere it could leak.

A suite of orders with real-looking PANs, tracks and CSCs goes through every door: single and
batch orders, a dry run, a replay, refusals of every kind (clear card data included), free text
with a PAN typed into it, operator and issuer actions, the simulator, a delivery worker posting
notifications to a loopback receiver, the change feed, the operator API, the production batch
export. Then every log line, every HTTP response, every notification and a dump of the database
(rows, and the raw file or `pg_dump`) are searched for the values: zero hits.

The search is proven able to fail: with the redaction switched off (logging, or PAN masking of
free text), the same suite is found leaking.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, inspect, select, table, text
from sqlalchemy.engine import make_url

from issuance.domain.audit import Actor, ActorKind
from issuance.services.export import export_batch_personalization
from tests.conftest import Server
from tests.factories import (
    DEMO,
    ActingIssuerClient,
    OperatorClient,
    advance_clock,
    encrypt,
    luhn_pan,
    new_card_id,
    order_body,
    tick,
)
from tests.integration.test_delivery import Clock, drain, point_demobank_at, worker
from tests.receiver import Receiver

CSC_KEYS = ("cvv1", "cvv2", "pvv", "csc", "cvc2")


@dataclass(frozen=True)
class Card:
    """A card's sensitive data, and every string that must never be found."""

    pan: str
    cvv1: str
    cvv2: str
    pvv: str

    @property
    def track1(self) -> str:
        return f"B{self.pan}^LOVELACE/ADA^29112010000{self.pvv}000000"

    @property
    def track2(self) -> str:
        return f"{self.pan}=2911201{self.pvv}{self.cvv1}12345"

    def data(self, **changes: Any) -> dict[str, Any]:
        return {
            "pan": self.pan,
            "exp": "2911",
            "name": "ADA LOVELACE",
            "cvv1": self.cvv1,
            "cvv2": self.cvv2,
            "pvv": self.pvv,
            "trackData": {"track1": self.track1, "track2": self.track2},
            **changes,
        }

    def secrets(self) -> dict[str, str]:
        """Values long enough to be searched as they are; the CSCs are searched by their key."""
        return {
            "PAN": self.pan,
            "PAN, first 10": self.pan[:10],  # more than first 6 / last 4 is a leak
            "PAN, last 10": self.pan[-10:],
            "track 1": self.track1,
            "track 2": self.track2,
            "track 2 discretionary data": self.track2.split("=")[1],
        }


def _not_luhn(pan: str) -> str:
    """The PAN with its check digit off by one: fails the Luhn check, whatever the PAN."""
    return pan[:-1] + str((int(pan[-1]) + 1) % 10)


def _card(prefix: str, n: int) -> Card:
    return Card(luhn_pan(prefix), f"{n}4{n}", f"{n}8{n}", f"73{n}1")


@dataclass
class Evidence:
    places: dict[str, str]  # where → everything seen there, as text
    raw: dict[str, bytes]  # raw database files (SQLite)


class Recorder:
    """Keeps every HTTP response the test client receives: body and headers."""

    def __init__(self) -> None:
        self.responses: list[str] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append(f"{response.request.url} {response.status_code}\n")
        self.responses.append(json.dumps(dict(response.headers)) + "\n" + response.text)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as listening:
        yield listening


def _order(issuer: ActingIssuerClient, card: Card, **fields: Any) -> tuple[str, dict[str, Any]]:
    card_id = new_card_id()
    body = order_body(encrypt(card.data(), issuer.jwks), **fields)
    answer = issuer.order(card_id, body)
    assert answer.status_code == 202, answer.text
    return card_id, body


def _refusals(issuer: ActingIssuerClient, card: Card, other: Card) -> None:
    """Every kind of wrong order carrying card data; each must be a 400, none a 500."""
    clear = card.data()
    bodies = [
        order_body(clear),  # the card data as an object where the JWE belongs
        order_body(json.dumps(clear)),  # ... as JSON text
        order_body(card.pan),  # ... as a bare PAN
        order_body(card.track2),  # ... as a track
        {**order_body(encrypt(clear, issuer.jwks)), "pan": card.pan, "cvv2": card.cvv2},
        {**order_body(encrypt(clear, issuer.jwks)), "trackData": clear["trackData"]},
        {**order_body(encrypt(clear, issuer.jwks)), "iccData": "9F2608" + card.pan},
        order_body(encrypt(card.data(exp="2913"), issuer.jwks)),  # bad expiry
        order_body(encrypt(card.data(pan=_not_luhn(card.pan)), issuer.jwks)),  # Luhn
        order_body(encrypt(other.data(), issuer.jwks), cardProductId="DEMO-DEBIT"),  # BIN
        order_body(encrypt(card.data(cvv2="98x"), issuer.jwks)),
    ]
    for body in bodies:
        answer = issuer.order(new_card_id(), body)
        assert answer.status_code == 400, answer.text


def _drive(server: Server, http: httpx.Client, receiver: Receiver, cards: list[Card]) -> None:
    debit, prepaid, credit, held, simulated, spare = cards
    platform = server.platform
    point_demobank_at(platform, receiver.url)
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)

    full, body = _order(issuer, debit)  # the whole life of a card
    retry = {**body, "encryptedData": encrypt(debit.data(), issuer.jwks)}
    assert issuer.order(full, retry).headers.get("Idempotent-Replayed") == "true"
    batch = [
        {
            "cardId": new_card_id(),
            **order_body(
                encrypt(prepaid.data(), issuer.jwks),
                cardProductId="DEMO-PREPAID",
                paymentApplication=None,
            ),
        },
        {
            "cardId": new_card_id(),
            **order_body(
                encrypt(credit.data(), issuer.jwks),
                cardProductId="DEMO-CREDIT",
                services={"issuance": "CREATION", "delivery": "chronopost-express"},
            ),
        },
        {
            "cardId": new_card_id(),
            **order_body(encrypt(spare.data(pan=_not_luhn(spare.pan)), issuer.jwks)),
        },
        {
            "cardId": new_card_id(),
            **order_body(encrypt(spare.data(), issuer.jwks)),
            "pan": spare.pan,
        },
    ]
    results = issuer.order_batch(batch).json()["cards"]
    assert ["operationId" in r for r in results] == [True, True, False, False], results
    dry = issuer.order(new_card_id(), order_body(encrypt(spare.data(), issuer.jwks)), dryRun="true")
    assert dry.status_code == 200, dry.text
    _refusals(issuer, debit, credit)

    on_hold, _ = _order(issuer, held)  # free text with a PAN typed into it, twice
    assert issuer.hold(on_hold, f"customer read {held.pan} on the phone").status_code == 200
    assert issuer.release(on_hold).status_code == 200
    spaced = " ".join(held.pan[i : i + 4] for i in range(0, 16, 4))
    for action in ("prepare", "queue", "start"):
        assert operator.act(on_hold, action).status_code == 200
    assert operator.act(on_hold, "exception", reason=f"misprint of {spaced}").status_code == 200
    assert operator.act(on_hold, "fail", reason="destroyed", errorCode="SPOILED").status_code == 200

    cancelled, _ = _order(issuer, spare)
    assert issuer.cancel(cancelled).status_code == 200

    for action in ("prepare", "queue"):
        answer = operator.act(full, action)
    records = export_batch_personalization(
        answer.json()["details"]["productionBatch"],
        uow=platform.uow(),
        masters=platform.keys.master_keys,
        clock=platform.clock,
        actor=Actor(ActorKind.OPERATOR, "exporter"),
    )
    [record] = [r for r in records if r.card_id == full]
    assert record.card_data == debit.data()  # decrypted there, and only there
    for action in ("start", "complete", "ship", "deliver"):
        assert operator.act(full, action).status_code == 200
    simulated_id, _ = _order(issuer, simulated, consumerId="sim-data-exception-1")
    advance_clock(http, 60, headers=issuer.headers)
    assert tick(http, headers=issuer.headers) >= 1

    clock = Clock()
    drain(worker(platform, clock), clock)
    assert receiver.received, "the worker delivered nothing"
    _read_everything(http, issuer, operator, [full, on_hold, cancelled, simulated_id])


def _read_everything(
    http: httpx.Client, issuer: ActingIssuerClient, operator: OperatorClient, cards: list[str]
) -> None:
    for card_id in cards:
        assert issuer.status(card_id).status_code == 200
    cursor: str | None = None
    while True:  # the whole change feed
        params: dict[str, str | int] = {"limit": 7, **({"after": cursor} if cursor else {})}
        page = http.get(
            f"/banking/v1/issuers/{DEMO}/operations", params=params, headers=issuer.headers
        ).json()
        cursor = page["cursor"]
        if not page["hasMore"]:
            break
    for path in (
        "/operator/v1/orders",
        "/operator/v1/deliveries",
        "/operator/v1/endpoints",
        "/operator/v1/audit?limit=1000",
    ):
        assert http.get(path, headers=operator.headers).status_code == 200
    for path in ("/openapi.json", "/.well-known/jwks.json", "/docs"):
        assert http.get(path).status_code == 200


def _rows(engine: Engine) -> str:
    """Every row of every table, as text (binary columns as their repr)."""
    lines: list[str] = []
    with engine.connect() as connection:
        for name in inspect(engine).get_table_names():
            rows = connection.execute(select(text("*")).select_from(table(name)))
            lines.extend(repr(tuple(row)) for row in rows)
    return "\n".join(lines)


def _raw_database(database_url: str) -> tuple[dict[str, str], dict[str, bytes]]:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        files = [path, path.with_name(path.name + "-wal")]
        return {}, {str(f): f.read_bytes() for f in files if f.exists()}
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is needed to dump the PostgreSQL database"
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    dumped = subprocess.run(
        [pg_dump, "--no-owner", plain], capture_output=True, text=True, check=True
    )
    return {"pg_dump": dumped.stdout}, {}


def _gather(
    server: Server,
    recorder: Recorder,
    receiver: Receiver,
    capfd: pytest.CaptureFixture[str],
    database_url: str,
) -> Evidence:
    out, err = capfd.readouterr()
    notifications = [json.dumps(r.headers) + "\n" + r.body.decode() for r in receiver.received]
    dumps, raw = _raw_database(database_url)
    return Evidence(
        places={
            "logs": out + err,
            "HTTP responses": "\n".join(recorder.responses),
            "notifications": "\n".join(notifications),
            "database rows": _rows(server.platform.engine),
            **{f"database ({name})": dump for name, dump in dumps.items()},
        },
        raw=raw,
    )


def _found_in(seen: str, card: Card) -> set[str]:
    joined = re.sub(r"(?<=\d)[ -](?=\d)", "", seen)  # "4539 9100 …" searched as digits too
    found = {label for label, secret in card.secrets().items() if secret in seen + "\n" + joined}
    for key in CSC_KEYS:
        for value in (card.cvv1, card.cvv2, card.pvv):
            if re.search(rf"(?i)\b{key}\W{{1,6}}{value}\b", seen):
                found.add(f"{key} value")
    return found


def leaks(evidence: Evidence, cards: list[Card]) -> set[tuple[str, str]]:
    """(where, what) of every sensitive value found."""
    found = {
        (place, label)
        for place, seen in evidence.places.items()
        for card in cards
        for label in _found_in(seen, card)
    }
    for place, raw in evidence.raw.items():
        for card in cards:
            found |= {
                (f"raw {place}", label)
                for label, secret in card.secrets().items()
                if secret.encode() in raw
            }
    return found


CARDS = [_card("45399100", 1), _card("45399200", 2), _card("541275", 3)] + [
    _card("45399100", n) for n in (4, 5, 6)
]


def _suite(
    server: Server, receiver: Receiver, capfd: pytest.CaptureFixture[str], database_url: str
) -> Evidence:
    recorder = Recorder()
    capfd.readouterr()  # from here on, everything the platform logs is kept
    with httpx.Client(
        base_url=server.base_url, timeout=30, event_hooks={"response": [recorder]}
    ) as http:
        _drive(server, http, receiver, CARDS)
    return _gather(server, recorder, receiver, capfd, database_url)


def test_no_card_data_anywhere(
    server: Server, receiver: Receiver, capfd: pytest.CaptureFixture[str], database_url: str
) -> None:
    evidence = _suite(server, receiver, capfd, database_url)

    assert leaks(evidence, CARDS) == set()
    assert '"request_body"' in evidence.places["logs"]  # bodies were logged, redacted
    assert "453991******" in evidence.places["logs"]  # PANs were there to be masked
    assert "sensitiveDataPurgedAt" in evidence.places["notifications"]


@pytest.fixture
def logging_redaction_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch the logging redaction off (keys kept, PANs left as they are)."""
    import issuance.logging

    monkeypatch.setattr(issuance.logging, "is_sensitive_key", lambda _key: False)
    monkeypatch.setattr(issuance.logging, "_redact", lambda value: value)


@pytest.fixture
def pan_masking_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch PAN masking off, in free text and in logs alike."""
    import issuance.contract.sensitive

    monkeypatch.setattr(issuance.contract.sensitive, "_mask", lambda digits: digits)


def test_the_search_finds_card_data_when_logging_redaction_is_off(
    logging_redaction_off: None,
    server: Server,
    receiver: Receiver,
    capfd: pytest.CaptureFixture[str],
    database_url: str,
) -> None:
    found = leaks(_suite(server, receiver, capfd, database_url), CARDS)

    assert {("logs", "PAN"), ("logs", "track 2"), ("logs", "cvv2 value")} <= found
    assert {place for place, _ in found} == {"logs"}


def test_the_search_finds_a_pan_typed_in_free_text_when_masking_is_off(
    pan_masking_off: None,
    server: Server,
    receiver: Receiver,
    capfd: pytest.CaptureFixture[str],
    database_url: str,
) -> None:
    found = leaks(_suite(server, receiver, capfd, database_url), CARDS)

    places = {place for place, label in found if label == "PAN"}
    assert {"logs", "HTTP responses", "notifications", "database rows"} <= places

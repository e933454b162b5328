"""The bulk path (db/bulk.py) writes exactly what the per-card path writes, on each database.

An order imported in bulk, one placed through the batch API (bulk too) and one placed alone (the
per-card path, `stage_order`) must leave the same order row, journal events (sequence numbers
included, for a new card and for a card with history), outbox deliveries and audit entries,
modulo ids, times and the card's own identifiers.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import KeySet
from sqlalchemy import Table, select, text

from issuance.api.errors import schema_problems
from issuance.db import bulk
from issuance.db.bulk import SqlBulkIntake, bulk_intake_factory, planner_statistics
from issuance.db.models import AuditRow, CardRow, DeliveryRow, EventRow, OrderRow
from issuance.domain.audit import PLATFORM
from issuance.platform import Platform
from issuance.services.bulk_placing import LookUp
from issuance.services.importing import Importer, LineReport
from issuance.services.intake import IntakeKeys
from issuance.services.order_files import FileFormat, records
from issuance.services.unit_of_work import Collision
from tests.conftest import Server
from tests.factories import (
    DEMO,
    ActingIssuerClient,
    card_data,
    encrypt,
    new_card_id,
    order_body,
)
from tests.outbox import statements

ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _importer(platform: Platform, name: str, **change: Any) -> Importer:
    settings: dict[str, Any] = {
        "issuer_id": DEMO,
        "file_name": name,
        "uow": platform.uow,
        "keys": platform.intake_keys,
        "clock": platform.clock,
        "new_id": platform.new_id,
        "actor": PLATFORM,
        "schema_problems": lambda error: schema_problems(list(error.errors())),
        "bulk": bulk_intake_factory(platform.engine, planner_statistics(platform.engine)),
        **change,
    }
    return Importer(**settings)


def _import(importer: Importer, path: Path) -> list[LineReport]:
    reports: list[LineReport] = []
    with path.open("rb") as stream:
        importer.run(records(stream, FileFormat.JSONL), reports.extend)
    return reports


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _item(jwks: dict[str, Any], card_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    secret = encrypt(data or card_data(), jwks)
    body = order_body(secret, issuerRequestId=f"req-{new_card_id()}")
    return {"cardId": card_id, **body}


def _neutral(value: Any, names: dict[str, str]) -> Any:
    """The value with the card's own identifiers named, times and secrets blanked."""
    if isinstance(value, dict):
        return {key: _neutral(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_neutral(item, names) for item in value]
    if isinstance(value, datetime) or (isinstance(value, str) and ISO_TIME.match(value)):
        return "<time>"
    if isinstance(value, bytes):
        return "<sealed>"
    if isinstance(value, str) and value in names:
        return names[value]
    return value


def _rows(platform: Platform, card_id: str, operation_id: str) -> dict[str, Any]:
    """Everything the order wrote, keyed by table, ids and times left out."""

    def table(model: Any) -> Table:
        found: Table = model.__table__
        return found

    orders, events, deliveries, audit, cards = (
        table(m) for m in (OrderRow, EventRow, DeliveryRow, AuditRow, CardRow)
    )
    with platform.engine.connect() as connection:
        order = (
            connection.execute(select(orders).where(orders.c.operation_id == operation_id))
            .one()
            ._asdict()
        )
        journal = [
            row._asdict()
            for row in connection.execute(
                select(events)
                .where(events.c.operation_id == operation_id)
                .order_by(events.c.event_id)
            )
        ]
        event_ids = [row["event_id"] for row in journal]
        outbox = [
            row._asdict()
            for row in connection.execute(
                select(deliveries)
                .where(deliveries.c.event_id.in_(event_ids))
                .order_by(deliveries.c.delivery_id)
            )
        ]
        trail = [
            row._asdict()
            for row in connection.execute(
                select(audit).where(audit.c.operation_id == operation_id).order_by(audit.c.audit_id)
            )
        ]
        counter = (
            connection.execute(select(cards).where(cards.c.card_id == card_id)).one()._asdict()
        )
    names = {
        card_id: "<card>",
        operation_id: "<operation>",
        order["issuer_request_id"]: "<key>",
        order["request_fingerprint"]: "<fingerprint>",
    }
    if order["input_file_name"]:
        names[order["input_file_name"]] = "<file>"
        order["input_file_name"] = None  # the API's order has none
        assert len(order.pop("encrypted_data_digest")) == 64  # nor the digest of a line's JWE
    else:
        assert order.pop("encrypted_data_digest") is None
    for row in journal:
        assert row["txid"] > 0 if platform.engine.dialect.name == "postgresql" else True
        del row["event_id"], row["txid"]
    for row in outbox:
        assert row["event_id"] in event_ids
        del row["delivery_id"], row["event_id"]
    for row in trail:
        del row["audit_id"], row["actor_kind"], row["actor_id"], row["actor_issuer_id"]
    # the card's counter: its last sequence, and on PostgreSQL the last writer's transaction
    assert counter.pop("last_txid") > 0 if platform.engine.dialect.name == "postgresql" else True
    document = {
        "order": order,
        "events": journal,
        "deliveries": outbox,
        "audit": trail,
        "card": counter,
    }
    neutral: dict[str, Any] = _neutral(document, names)
    return neutral


def _placed(answer: httpx.Response) -> str:
    assert answer.status_code == 202, answer.text
    body = answer.json()
    operation_id: str = body["cards"][0]["operationId"] if "cards" in body else body["operationId"]
    return operation_id


def _alone(issuer: ActingIssuerClient, item: dict[str, Any]) -> httpx.Response:
    """The order placed on its own (the per-card path)."""
    body = {key: value for key, value in item.items() if key != "cardId"}
    return issuer.order(item["cardId"], body)


def test_an_order_placed_in_bulk_writes_the_same_rows_as_one_placed_alone(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    platform = server.platform
    issuer = ActingIssuerClient(http)
    jwks = issuer.jwks
    alone, by_batch, by_file = new_card_id(), new_card_id(), new_card_id()
    again_alone, again_by_batch, again_by_file = new_card_id(), new_card_id(), new_card_id()
    for card_id in (again_alone, again_by_batch, again_by_file):  # with history: sequences go on
        _placed(_alone(issuer, _item(jwks, card_id)))
        assert issuer.cancel(card_id).status_code == 200
    placed = {
        card_id: _placed(_alone(issuer, _item(jwks, card_id))) for card_id in (alone, again_alone)
    }
    batch = issuer.order_batch([_item(jwks, c) for c in (by_batch, again_by_batch)])
    assert batch.status_code == 202, batch.text
    placed.update({line["cardId"]: line["operationId"] for line in batch.json()["cards"]})

    path = _write(tmp_path / "cards.jsonl", [_item(jwks, c) for c in (by_file, again_by_file)])
    reports = _import(_importer(platform, path.name), path)

    assert [r.result.value for r in reports] == ["ACCEPTED", "ACCEPTED"]
    placed.update({r.card_id: str(r.operation_id) for r in reports})
    for reference, in_batch, in_file in (
        (alone, by_batch, by_file),
        (again_alone, again_by_batch, again_by_file),
    ):
        expected = _rows(platform, reference, placed[reference])
        assert _rows(platform, in_batch, placed[in_batch]) == expected
        actual = _rows(platform, in_file, placed[in_file])
        for event in actual["events"]:  # the file's name is the one thing the API has not
            payload = event["payload"]
            assert payload.pop("inputFileName") == payload["details"].pop("inputFileName")
        assert actual == expected
    again = _rows(platform, again_by_file, placed[again_by_file])
    assert [e["sequence"] for e in again["events"]] == [3]  # placed, cancelled, placed again
    assert again["deliveries"], "the sandbox issuer has a notification endpoint"


def test_an_order_for_a_bulk_container_is_imported_into_its_container(
    platform: Platform, tmp_path: Path
) -> None:
    """Joining a container is the per-card path's: such a batch is staged card by card."""
    jwks = platform.keys.public_jwks()
    box = f"box-{new_card_id()}"
    shipment = {"type": "BULK", "groupId": box, "orderId": f"pallet-{box}"}
    boxed = [
        {
            **item,
            "services": {"issuance": "CREATION", "delivery": "dhl-branch"},
            "shipment": {**shipment, "deliveryAddress": item["shipment"]["deliveryAddress"]},
        }
        for item in (_item(jwks, new_card_id()) for _ in range(2))
    ]
    path = _write(tmp_path / "boxed.jsonl", [*boxed, _item(jwks, new_card_id())])

    reports = _import(_importer(platform, path.name), path)

    assert [r.result.value for r in reports] == ["ACCEPTED"] * 3
    with platform.uow() as uow:
        container = uow.containers.get(DEMO, box, lock=False)
        assert container is not None
        assert container.order_id == f"pallet-{box}"
        members = {order.card_id for order in uow.containers.members(DEMO, box)}
    assert members == {line["cardId"] for line in boxed}
    with platform.engine.connect() as connection:  # staged card by card: the digest kept too
        digests = connection.execute(select(OrderRow.encrypted_data_digest)).scalars().all()
    jwes = [line["encryptedData"].encode() for line in boxed]
    assert {hashlib.sha256(jwe).hexdigest() for jwe in jwes} <= set(digests)


def test_a_batch_is_checked_line_after_line_like_the_per_card_path(
    platform: Platform, tmp_path: Path
) -> None:
    """Within one batch: a repeated key replays, a second order of a card is in progress."""
    jwks = platform.keys.public_jwks()
    data = card_data()
    first, other = _item(jwks, new_card_id(), data), _item(jwks, new_card_id())
    retry = {**first, "encryptedData": encrypt(data, jwks)}  # same content, another JWE
    reused = {**other, "cardId": new_card_id()}  # same key, another card
    second = _item(jwks, first["cardId"])  # the card already has an order in progress
    path = _write(tmp_path / "batch.jsonl", [first, retry, other, reused, second])

    reports = _import(_importer(platform, path.name), path)

    assert [(r.result.value, r.error_code, r.field) for r in reports] == [
        ("ACCEPTED", None, None),
        ("REPLAYED", None, None),
        ("ACCEPTED", None, None),
        ("REFUSED", "IDEMPOTENCY_KEY_REUSED", "issuerRequestId"),
        ("REFUSED", "ORDER_IN_PROGRESS", "cardId"),
    ]
    assert reports[1].operation_id == reports[0].operation_id
    with platform.engine.connect() as connection:
        actions = connection.execute(
            select(AuditRow.action).where(AuditRow.card_id == first["cardId"])
        ).scalars()
        assert list(actions) == ["order.placed", "order.replayed"]


def test_a_batch_writes_its_rows_in_one_statement_on_postgresql(
    platform: Platform, tmp_path: Path
) -> None:
    """Card counters, orders, events, deliveries and audit entries: a data-modifying CTE for
    each table but the last on PostgreSQL (one round trip), an executemany each on SQLite."""
    jwks = platform.keys.public_jwks()
    path = _write(tmp_path / "one.jsonl", [_item(jwks, new_card_id()) for _ in range(3)])
    importer = _importer(platform, path.name, batch_size=3)

    with statements(platform.engine) as sent:
        assert {r.result.value for r in _import(importer, path)} == {"ACCEPTED"}

    tables = ("cards", "orders", "events", "deliveries", "audit_log")
    writing = [s.sql for s in sent if "INSERT INTO" in s.sql.upper()]
    if platform.engine.dialect.name == "postgresql":
        [statement] = writing
        assert [t for t in tables if f"INSERT INTO {t} " in statement] == list(tables)
    else:
        assert [s.split()[2] for s in writing] == list(tables)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_re_run_replays_the_lines_already_placed_without_decrypting_them(
    platform: Platform, tmp_path: Path, workers: int
) -> None:
    jwks = platform.keys.public_jwks()
    lines = [_item(jwks, new_card_id()) for _ in range(4)]
    path = _write(tmp_path / "run.jsonl", lines)
    first = _import(_importer(platform, path.name), path)
    changed = {**lines[3], "consumerId": "another-consumer"}  # same key, other request
    path = _write(tmp_path / "run.jsonl", [*lines[:3], changed, _item(jwks, new_card_id())])
    blind = IntakeKeys(
        jwe=KeySet([]),
        fingerprint=platform.intake_keys.fingerprint,
        masters=platform.intake_keys.masters,
    )

    second = _import(_importer(platform, path.name, keys=blind, workers=workers), path)

    assert [r.result.value for r in second[:3]] == ["REPLAYED"] * 3
    assert [r.operation_id for r in second[:3]] == [r.operation_id for r in first[:3]]
    # A changed line or a new one is decrypted (and here cannot be, without the key).
    assert [(r.result.value, r.field) for r in second[3:]] == [
        ("REFUSED", "encryptedData"),
        ("REFUSED", "encryptedData"),
    ]
    again = _import(_importer(platform, "other-name.jsonl", keys=blind), path)
    assert {r.result.value for r in again} == {"REFUSED"}  # another file: decrypted in full


@pytest.mark.parametrize("workers", [0, 1])
def test_a_re_run_line_with_other_card_data_under_its_key_is_refused_not_replayed(
    platform: Platform, tmp_path: Path, workers: int
) -> None:
    """Same key, card, file and request, another JWE: decrypted and checked as an API retry."""
    jwks = platform.keys.public_jwks()
    data = [card_data() for _ in range(3)]
    lines = [
        {"cardId": new_card_id(), **order_body(encrypt(d, jwks), issuerRequestId=f"req-{n}")}
        for n, d in enumerate(data)
    ]
    path = _write(tmp_path / "run.jsonl", lines)
    first = _import(_importer(platform, path.name), path)
    other_card = {**lines[1], "encryptedData": encrypt(card_data(exp="3012"), jwks)}
    encrypted_again = {**lines[2], "encryptedData": encrypt(data[2], jwks)}
    path = _write(tmp_path / "run.jsonl", [lines[0], other_card, encrypted_again])

    second = _import(_importer(platform, path.name, workers=workers), path)

    assert [(r.result.value, r.error_code, r.field) for r in second] == [
        ("REPLAYED", None, None),  # the very line: not decrypted (the test above shows it)
        ("REFUSED", "IDEMPOTENCY_KEY_REUSED", "issuerRequestId"),
        ("REPLAYED", None, None),  # the same card data in a new JWE: the fingerprint matches
    ]
    assert [second[0].operation_id, second[2].operation_id] == [
        first[0].operation_id,
        first[2].operation_id,
    ]
    with platform.engine.connect() as connection:
        digests = connection.execute(select(OrderRow.encrypted_data_digest)).scalars().all()
    jwes = [line["encryptedData"].encode() for line in lines]  # those the first run placed
    assert set(digests) == {hashlib.sha256(jwe).hexdigest() for jwe in jwes}


def test_a_bulk_batch_that_collides_is_redone_card_by_card(
    platform: Platform, tmp_path: Path
) -> None:
    jwks = platform.keys.public_jwks()
    lines = [_item(jwks, new_card_id()) for _ in range(3)]
    path = _write(tmp_path / "three.jsonl", lines)
    opened: list[SqlBulkIntake] = []

    class Losing(SqlBulkIntake):
        def commit(self) -> None:
            self._session.rollback()
            raise Collision("a concurrent writer")

    def bulk() -> SqlBulkIntake:
        unit = Losing(platform.engine) if not opened else SqlBulkIntake(platform.engine)
        opened.append(unit)
        return unit

    reports = _import(_importer(platform, path.name, bulk=bulk), path)

    assert [r.result.value for r in reports] == ["ACCEPTED"] * 3
    with platform.engine.connect() as connection:
        cards = connection.execute(select(OrderRow.card_id)).scalars().all()
        sequences = connection.execute(select(EventRow.sequence)).scalars().all()
    assert sorted(cards) == sorted(line["cardId"] for line in lines)
    assert sequences == [1, 1, 1]


def test_a_card_taken_since_the_lookup_makes_the_batch_collide_and_be_redone(
    platform: Platform, tmp_path: Path
) -> None:
    """The insert itself hits the one-order-in-progress constraint: card by card, then refused."""
    jwks = platform.keys.public_jwks()
    taken, free = _item(jwks, new_card_id()), _item(jwks, new_card_id())
    first = _write(tmp_path / "first.jsonl", [taken])
    _import(_importer(platform, first.name), first)
    again = {**_item(jwks, taken["cardId"])}  # another order for the card in progress
    path = _write(tmp_path / "second.jsonl", [free, again])

    class Blind(SqlBulkIntake):
        def look_up(self, issuer_id: str, request_ids: Any, card_ids: Any) -> LookUp:
            found = super().look_up(issuer_id, request_ids, card_ids)
            return replace(found, active={})  # as if the card's order were placed after it

    reports = _import(_importer(platform, path.name, bulk=lambda: Blind(platform.engine)), path)

    assert [(r.result.value, r.error_code) for r in reports] == [
        ("ACCEPTED", None),
        ("REFUSED", "ORDER_IN_PROGRESS"),
    ]
    with platform.engine.connect() as connection:
        cards = connection.execute(select(OrderRow.card_id)).scalars().all()
    assert sorted(cards) == sorted([taken["cardId"], free["cardId"]])


def test_a_deadlock_with_another_writer_makes_the_batch_collide_and_be_redone(
    platform: Platform, tmp_path: Path
) -> None:
    """PostgreSQL breaks a lock cycle by failing one transaction: for a batch, that is losing
    a race, as a taken key is, and its cards are redone one by one (not a database error).

    Another writer holds the second card's counter row, uncommitted; the batch inserts the first
    card's, then waits for the second; the other writer then inserts the first card's and waits
    for the batch. The batch's backend finds the cycle first (it waits with the default 1 s
    deadlock_timeout, the other with 30 s) and fails."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no lock cycles")
    jwks = platform.keys.public_jwks()
    first, second = sorted(new_card_id() for _ in range(2))  # a batch writes in card order
    path = _write(tmp_path / "cycle.jsonl", [_item(jwks, first), _item(jwks, second)])
    lost: list[Collision] = []

    class Recording(SqlBulkIntake):
        def write(self, orders: Any, audit: Any) -> None:
            try:
                super().write(orders, audit)
            except Collision as collision:
                lost.append(collision)
                raise

    card_row = (
        "INSERT INTO cards (issuer_id, card_id, last_sequence, last_txid) VALUES (%s, %s, 0, 0)"
    )
    other = platform.engine.raw_connection()
    try:
        cursor = other.cursor()
        cursor.execute("SET deadlock_timeout = '30s'")
        cursor.execute(card_row, (DEMO, second))
        reports: list[LineReport] = []
        importer = _importer(platform, path.name, bulk=lambda: Recording(platform.engine))
        batch = threading.Thread(target=lambda: reports.extend(_import(importer, path)))
        batch.start()
        _wait_for_a_lock_wait(platform)
        cursor.execute(card_row, (DEMO, first))  # closes the cycle; waits until it is broken
        other.rollback()
        batch.join(timeout=30)
    finally:
        other.close()

    [collision] = lost
    assert "deadlock" in str(collision)
    assert [r.result.value for r in reports] == ["ACCEPTED", "ACCEPTED"]


def test_a_batch_writes_its_cards_in_card_order(platform: Platform, tmp_path: Path) -> None:
    """What keeps two batches sharing cards from a lock cycle: both take them in one order."""
    jwks = platform.keys.public_jwks()
    cards = sorted(new_card_id() for _ in range(3))
    path = _write(tmp_path / "backwards.jsonl", [_item(jwks, c) for c in reversed(cards)])

    reports = _import(_importer(platform, path.name, batch_size=3), path)

    assert [r.result.value for r in reports] == ["ACCEPTED"] * 3
    with platform.engine.connect() as connection:
        written = connection.execute(select(EventRow.card_id).order_by(EventRow.event_id))
        assert list(written.scalars()) == cards


def _wait_for_a_lock_wait(platform: Platform, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    while time.monotonic() < deadline:
        with platform.engine.connect() as connection:
            if connection.scalar(waiting):
                return
        time.sleep(0.02)
    raise AssertionError("the batch never waited for the other writer")


@pytest.mark.parametrize("workers", [1, 2])
def test_decrypting_in_worker_processes_changes_nothing_in_the_report(
    platform: Platform, tmp_path: Path, workers: int
) -> None:
    jwks = platform.keys.public_jwks()
    lines: list[Any] = [_item(jwks, new_card_id()) for _ in range(7)]
    lines.insert(3, {"cardId": "bad card"})
    path = _write(tmp_path / "pool.jsonl", lines)

    reports = _import(_importer(platform, path.name, workers=workers, batch_size=3), path)

    assert [(r.line, r.result.value) for r in reports] == [
        (n, "REFUSED" if n == 4 else "ACCEPTED") for n in range(1, 9)
    ]


def test_a_long_bulk_load_keeps_the_planner_statistics_up(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: ANALYZE as an issuer's orders double, or a batch's look-ups scan the issuer's
    every order once the table has grown with no statistics (autovacuum off, or behind)."""
    monkeypatch.setattr(bulk, "FIRST_ANALYZE", 3)
    monkeypatch.setattr(bulk, "ANALYZE_EVERY", 100)
    jwks = platform.keys.public_jwks()
    lines = [_item(jwks, new_card_id()) for _ in range(4)]
    statistics = planner_statistics(platform.engine)
    importer = _importer(
        platform,
        "grow.jsonl",
        batch_size=2,
        bulk=bulk_intake_factory(platform.engine, statistics),
    )
    with statements(platform.engine) as sent:
        for part in range(3):  # 12 orders in batches of 2: past 3 (at 4), 4 + 4, then 8 + 8
            path = _write(
                tmp_path / f"grow-{part}.jsonl", [_item(jwks, new_card_id()) for _ in lines]
            )
            assert {r.result.value for r in _import(importer, path)} == {"ACCEPTED"}
        if statistics is not None:
            statistics.settle()  # ANALYZE runs on a thread of its own

    analyzed = [s.sql for s in sent if s.sql.startswith("ANALYZE")]
    if platform.engine.dialect.name == "postgresql":
        assert analyzed == ["ANALYZE orders, cards, events, deliveries, audit_log"] * 2
    else:
        assert analyzed == []


def test_each_issuer_is_analyzed_as_its_own_orders_double(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new issuer in a large table is unknown to the planner too: its count starts afresh."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's planner prefers the index without statistics: none are kept")
    monkeypatch.setattr(bulk, "FIRST_ANALYZE", 10)
    monkeypatch.setattr(bulk, "ANALYZE_EVERY", 40)
    statistics = bulk.PlannerStatistics(platform.engine)

    def analyzes(issuer_id: str, groups: int) -> int:
        with statements(platform.engine) as sent:
            for _ in range(groups):
                statistics.grew(issuer_id, 5)
            statistics.settle()
        return sum(s.sql.startswith("ANALYZE") for s in sent)

    # 5 at a time: at 10, 20, 40, then every 40 (80, 120, 160, 200)
    assert analyzes("BANK-A", 40) == 7
    assert analyzes("BANK-B", 2) == 1  # its own first, though the table is large
    assert analyzes("BANK-A", 7) == 0  # 235, below 240
    assert analyzes("BANK-A", 1) == 1


def test_the_group_that_makes_an_analyze_due_does_not_wait_for_it(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its orders are committed: answering them after an ANALYZE held them, and the process's
    every request behind them, for as long as it took."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's planner prefers the index without statistics: none are kept")
    monkeypatch.setattr(bulk, "FIRST_ANALYZE", 5)
    statistics = bulk.PlannerStatistics(platform.engine)
    with platform.engine.connect() as holder, statements(platform.engine) as sent:
        holder.execute(text("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"))  # ANALYZE waits
        group = threading.Thread(target=statistics.grew, args=(DEMO, 5))  # due at 5
        group.start()
        group.join(timeout=10)
        returned = not group.is_alive()
        waiting = 0
        for _ in range(100):  # the ANALYZE's thread takes a connection, then waits for the lock
            holder.execute(text("SELECT pg_stat_clear_snapshot()"))  # read afresh each time
            waiting = holder.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE query LIKE 'ANALYZE%' AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                break
            time.sleep(0.05)
        holder.rollback()
        statistics.settle()
        group.join()
    assert returned  # while the ANALYZE waited for the lock
    assert waiting == 1
    assert [s.sql for s in sent if s.sql.startswith("ANALYZE")] == [
        "ANALYZE orders, cards, events, deliveries, audit_log"
    ]
    statistics.close()


def test_an_analyze_due_after_closing_is_skipped(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group committing while the process stops must not fail on the closed thread pool:
    its orders are committed."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's planner prefers the index without statistics: none are kept")
    monkeypatch.setattr(bulk, "FIRST_ANALYZE", 5)
    statistics = bulk.PlannerStatistics(platform.engine)
    statistics.close()
    with statements(platform.engine) as sent:
        statistics.grew(DEMO, 5)
        statistics.settle()
    assert not any(s.sql.startswith("ANALYZE") for s in sent)

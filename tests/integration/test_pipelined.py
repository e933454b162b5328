"""A group's look-ups sent together (db/pipelined.py) find what they found one by one.

On PostgreSQL a batch reads its keys, its cards, its issuer and the centres in one round trip,
and its event ids and card counters in another; on SQLite, and in `placed`, `active` and `issuer`, they are
the statements they always were, so each answer is compared with theirs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from issuance.db.bulk_rows import DRAWN_EVENT_IDS
from issuance.db.config_repositories import ISSUER_STAMP
from issuance.db.engine import make_async_engine
from issuance.db.pipelined import pipelined
from issuance.domain.audit import PLATFORM
from issuance.platform import Platform
from tests.factories import DEMO, new_card_id, place_command
from tests.outbox import statements


def _placed(platform: Platform) -> tuple[list[str], list[str]]:
    """Three orders, two with a key; and the keys and cards to look up, unknown ones among them."""
    keys, cards = [f"key-{new_card_id()}", f"key-{new_card_id()}"], []
    for key in [*keys, None]:
        card = new_card_id()
        platform.ordering.place(place_command(card, key), actor=PLATFORM)
        cards.append(card)
    return [*keys, "key-never-used"], [*cards, new_card_id()]


def test_a_batch_looks_up_at_once_what_it_found_statement_by_statement(
    platform: Platform,
) -> None:
    keys, cards = _placed(platform)
    centres = ["PC-PARIS", "PC-NEWARK", "PC-NOWHERE"]
    with platform.bulk() as intake:
        together = intake.look_up(DEMO, keys, cards)
        centres_together = [intake.centre(centre) for centre in centres]
    with platform.bulk() as intake:
        one_by_one = (intake.placed(DEMO, keys), intake.active(DEMO, cards), intake.issuer(DEMO))
        centres_one_by_one = [intake.centre(centre) for centre in centres]

    assert (together.placed, together.active, together.issuer) == one_by_one
    assert centres_together == centres_one_by_one
    assert centres_together[0] is not None
    assert centres_together[2] is None
    assert sorted(together.placed) == sorted(keys[:2])
    assert sorted(together.active) == sorted(cards[:3])
    assert together.issuer is not None
    assert together.issuer.issuer_id == DEMO


def _rows(connection: Connection) -> list[list[tuple[Any, ...]]]:
    """Statements with bound values of their own (the sequence's name) and given ones."""
    return pipelined(
        connection,
        [
            (DRAWN_EVENT_IDS, {"count": 3}),
            (ISSUER_STAMP, {"issuer_id": DEMO}),
            (ISSUER_STAMP, {"issuer_id": "NOBODY0000"}),
        ],
    )


def _expect_rows(rows: list[list[tuple[Any, ...]]], stamp: tuple[Any, ...]) -> None:
    drawn, found, missing = rows
    assert len(drawn) == 3
    assert len({txid for _, txid in drawn}) == 1
    assert found == [stamp]
    assert missing == []


def _stamp(connection: Connection) -> tuple[Any, ...]:
    row = connection.execute(ISSUER_STAMP, {"issuer_id": DEMO}).one()
    return tuple(row)


def test_statements_go_together_on_a_thread_and_on_an_event_loop(platform: Platform) -> None:
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("pipeline mode is PostgreSQL's (psycopg)")
    with platform.engine.connect() as connection:
        _expect_rows(_rows(connection), _stamp(connection))

    async def on_loop() -> None:
        engine = make_async_engine(platform.engine.url.render_as_string(hide_password=False))
        try:
            async with engine.connect() as connection:
                stamp = await connection.run_sync(_stamp)
                _expect_rows(await connection.run_sync(_rows), stamp)
        finally:
            await engine.dispose()

    asyncio.run(on_loop())


def test_a_lost_connection_is_raised_as_sqlalchemy_would_and_invalidated(
    platform: Platform,
) -> None:
    """The API answers an unreachable database with a 503 only for SQLAlchemy's errors, and the
    pool must not hand the dead connection out again."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("pipeline mode is PostgreSQL's (psycopg)")
    with platform.engine.connect() as killer, platform.engine.connect() as victim:
        pid = victim.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        victim.commit()
        killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError) as raised:
            _rows(victim)
        assert raised.value.connection_invalidated
        assert victim.invalidated


def test_pipelined_statements_need_psycopg(platform: Platform) -> None:
    if platform.engine.dialect.name != "sqlite":
        pytest.skip("the embedded database has no pipeline")
    with platform.engine.connect() as connection, pytest.raises(TypeError, match="psycopg"):
        _rows(connection)


def test_a_batch_reads_its_issuers_document_only_when_its_stamp_is_new(
    platform: Platform,
) -> None:
    """The stamp read with the look-ups keys the cache as the stamp read alone does: once the
    configuration is validated, a batch's look-ups and centres send nothing else."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("pipeline mode is PostgreSQL's (psycopg)")
    keys, cards = _placed(platform)
    with platform.bulk() as intake:
        intake.look_up(DEMO, keys, cards)  # the cache may be cold
    with platform.bulk() as intake, statements(platform.engine) as sent:
        found = intake.look_up(DEMO, keys, cards)
        centre = intake.centre("PC-PARIS")

    assert found.issuer is not None
    assert centre is not None
    assert [s.sql for s in sent] == []

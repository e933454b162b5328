"""Migrations against models, on an empty database of each kind."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from issuance.db.migrate import check, downgrade, upgrade


def test_upgrade_matches_the_models_and_downgrades_cleanly(database_url: str) -> None:
    downgrade(database_url, "base")  # the fixture's database is migrated already: start empty
    engine = create_engine(database_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    upgrade(database_url)
    assert {
        "orders",
        "events",
        "cards",
        "issuers",
        "api_clients",
        "personalization_centres",
    } <= set(inspect(engine).get_table_names())
    check(database_url)  # raises if the models and the schema differ

    downgrade(database_url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()

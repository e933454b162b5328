"""Alembic environment: the URL comes from the caller's config or from settings, never a file."""

from __future__ import annotations

from alembic import context

from issuance.db.engine import make_engine
from issuance.db.models import Base
from issuance.settings import Settings

url = context.config.get_main_option("sqlalchemy.url") or Settings().database_url
engine = make_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=engine.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()

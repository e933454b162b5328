"""Persistence adapter: SQLAlchemy rows, repositories, the outbox and Alembic migrations."""

"""The kept answers of batch orders (services/batch_ordering.py, `BatchReplies`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from issuance.db.engine import SQLITE_BEGIN
from issuance.db.models import BatchReplyRow


class SqlBatchReplies:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find(self, issuer_id: str, digest: str, *, since: datetime) -> list[dict[str, Any]] | None:
        query = select(BatchReplyRow.lines).where(
            BatchReplyRow.issuer_id == issuer_id,
            BatchReplyRow.request_digest == digest,
            BatchReplyRow.created_at >= since,
        )
        with self.engine.connect().execution_options(**{SQLITE_BEGIN: "DEFERRED"}) as connection:
            lines = connection.scalar(query)
        return None if lines is None else list(lines)

    def keep(
        self, issuer_id: str, digest: str, lines: list[dict[str, Any]], *, at: datetime
    ) -> None:
        """Replace an expired answer; when an identical request raced this one, its answer stays."""
        key = (BatchReplyRow.issuer_id == issuer_id, BatchReplyRow.request_digest == digest)
        try:
            with Session(self.engine) as session, session.begin():
                session.execute(delete(BatchReplyRow).where(*key))
                session.add(
                    BatchReplyRow(
                        issuer_id=issuer_id, request_digest=digest, lines=lines, created_at=at
                    )
                )
        except IntegrityError:
            pass  # a concurrent identical request kept its answer first: the same cards

    def forget(self, *, before: datetime) -> int:
        """Drop the answers kept before `before` (past the replay window); how many went."""
        with Session(self.engine) as session, session.begin():
            gone = session.execute(delete(BatchReplyRow).where(BatchReplyRow.created_at < before))
        return int(getattr(gone, "rowcount", 0) or 0)

"""Extension: the wire shapes of order-file uploads (`…/orderFiles`), for the API description."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from issuance.contract.common import WireModel


class ImportStatus(StrEnum):
    QUEUED = "QUEUED"  # received and kept on disk, waiting for the import thread
    RUNNING = "RUNNING"  # being imported (or its process died: claimed again once stale)
    DONE = "DONE"  # every line has its outcome in the report
    FAILED = "FAILED"  # stopped on an unexpected error; `errorCode` says which


class ImportAccepted(WireModel):
    """`202`: the file is kept and its import queued."""

    import_id: str
    status: ImportStatus


class OrderFileImport(WireModel):
    """An import's status; `progress` is bytes read over the file's size (1 when DONE)."""

    import_id: str
    file_name: str
    format: str
    status: ImportStatus
    size_bytes: int
    bytes_read: int
    progress: float
    lines: int
    accepted: int
    replayed: int
    refused: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error_code: str | None = None
    error: str | None = None


class ReportRow(WireModel):
    """One line of the report (JSON Lines, or CSV with these columns): never an order value."""

    line: int
    card_id: str
    result: str  # ACCEPTED, REPLAYED or REFUSED
    operation_id: str | None = None
    error_code: str | None = None
    field: str | None = None

"""A line of the bureau's production / shipment report (docs/production-files.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, StringConstraints

from issuance.contract.common import ISSUER_ID_PATTERN, CardId, OperationId, WireModel
from issuance.contract.workflow import Code, Note


class BureauEvent(StrEnum):
    """What happened to a card at the centre; each is one workflow action."""

    STARTED = "STARTED"  # personalization started → CARD_PROD_ONGOING (stock is taken)
    DONE = "DONE"  # personalized → CARD_PROD_DONE
    SHIPPED = "SHIPPED"  # handed to the carrier → CARD_SHIPPED
    EXCEPTION = "EXCEPTION"  # stopped, resumable → CARD_PROD_EXCEPTION
    DATA_EXCEPTION = "DATA_EXCEPTION"  # cannot be made from its data → DATA_EXCEPTION


class ReportLine(WireModel):
    """The card (`operationId`, or `cardId` with `issuerId`), the event and when it happened."""

    operation_id: OperationId | None = None
    card_id: CardId | None = None
    issuer_id: Annotated[str, StringConstraints(pattern=ISSUER_ID_PATTERN)] | None = None
    event: BureauEvent
    at: AwareDatetime
    reason: Note | None = None
    error_code: Code | None = None
    carrier: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,64}$")] | None = None
    tracking_number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")] | None = (
        None
    )
    tracking_url: Annotated[str, StringConstraints(pattern=r"^https?://\S{1,2000}$")] | None = None

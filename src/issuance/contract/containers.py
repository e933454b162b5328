"""Bodies of the BULK container extension: the operator's container actions.

Containers are ours (D1 names `shipment.groupId` and `shipment.orderId` but no container API);
the answers are the container in camelCase, as `services/containers.py` shapes them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from issuance.contract.common import WireModel
from issuance.contract.workflow import Note

Carrier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,64}$")]
TrackingNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")]
TrackingUrl = Annotated[str, StringConstraints(pattern=r"^https?://\S{1,2000}$")]


class ShipContainerRequest(WireModel):
    """`:ship`: the carrier takes the container (again, after a return) under this tracking;
    without `carrier`, the one of the cards' shipping method."""

    carrier: Carrier | None = None
    tracking_number: TrackingNumber | None = None
    tracking_url: TrackingUrl | None = None


class TrackContainerRequest(WireModel):
    """`:track`: what the carrier reports, `UNDELIVERABLE` or `RETURNED`."""

    status: Annotated[str, StringConstraints(pattern=r"^(UNDELIVERABLE|RETURNED)$")]
    message: Note | None = None


class ReceiveContainerRequest(WireModel):
    """`:receive`: the branch confirms receipt, optionally with a note."""

    message: Note | None = None

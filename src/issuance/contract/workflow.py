"""Bodies of our extensions: operator actions, issuer decisions, sandbox controls."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from issuance.contract.common import WireModel
from issuance.contract.sensitive import mask_pans

Code = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9_]{1,64}$")]
# Free text travels on (details.reason, notifications): a PAN typed into it is masked on entry.
Note = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(mask_pans)]


class ActionRequest(WireModel):
    """What an operator says with an action; each action reads the fields it needs."""

    reason: Note | None = None
    error_code: Code | None = None
    carrier: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,64}$")] | None = None
    tracking_number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")] | None = (
        None
    )
    tracking_url: Annotated[str, StringConstraints(pattern=r"^https?://\S{1,2000}$")] | None = None


class HoldRequest(WireModel):
    reason: Note


class ReturnDecisionRequest(WireModel):
    """`RESHIP` (optionally with the new tracking number) or `DESTROY`."""

    decision: Annotated[str, StringConstraints(pattern=r"^(RESHIP|DESTROY)$")]
    tracking_number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")] | None = (
        None
    )
    note: Note | None = None


class ReplenishRequest(WireModel):
    quantity: int = Field(ge=1, le=10_000_000)


class ClockAdvance(WireModel):
    seconds: float = Field(gt=0, le=366 * 86_400)


class ScenarioRequest(WireModel):
    scenario: Annotated[
        str,
        StringConstraints(
            pattern=r"^(SUCCESS|OUT_OF_STOCK|DATA_EXCEPTION|ON_HOLD|RETURNED|CANCELLED)$"
        ),
    ]


class ChaosSettings(WireModel):
    """Sandbox chaos of one notification endpoint (all zero / false: none)."""

    duplicate: float = Field(default=0.0, ge=0, le=1, description="probability of a second POST")
    delay_seconds: float = Field(default=0.0, ge=0, le=10, description="random hold-back, up to")
    reorder: bool = Field(default=False, description="events of a card in any order")

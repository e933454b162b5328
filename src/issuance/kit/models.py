"""What the kit hands back: orders placed, and state changes for the issuer's handler.

Wire shapes come from `issuance.contract` (the platform's own models), so the kit and the API
cannot drift; these add only what the kit itself knows (was it a replay, which change is this).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from issuance.contract.operations import Operation
from issuance.kit.errors import UnexpectedResponse

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse(model: type[ModelT], response: httpx.Response) -> ModelT:
    """The answer read with `model`; `UnexpectedResponse` (never a pydantic error) otherwise."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as error:
        raise UnexpectedResponse(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} with a body that is not a {model.__name__}"
        ) from error


class TokenAnswer(BaseModel):
    """The OAuth2 token answer (snake_case, as RFC 6749 spells it)."""

    model_config = ConfigDict(extra="ignore")

    access_token: str
    expires_in: float | None = None  # seconds


class Jwks(BaseModel):
    model_config = ConfigDict(extra="ignore")

    keys: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    """`202` for one card: the operation to follow, and the key that makes a retry safe."""

    card_id: str
    operation_id: str
    issuer_request_id: str
    replayed: bool  # the platform had it already (`Idempotent-Replayed: true`)


@dataclass(frozen=True, slots=True)
class CardChange:
    """One real change of an operation's state, as the issuer's handler receives it.

    `change_id` is stable: if the process dies after storing the change but before the handler
    returned, the handler is called again with the same id. A handler whose effect must happen
    once records `change_id` alongside that effect.
    """

    change_id: int
    issuer_id: str
    card_id: str
    operation: Operation
    previous: Operation | None  # the state this replaces; None for a new operation
    raw: dict[str, Any]  # the operation as received, unknown fields included

    @property
    def status(self) -> str:
        """`details.status`, kept as received even when it is a value the kit does not know."""
        return self.operation.details.status

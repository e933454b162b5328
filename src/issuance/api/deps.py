"""Dependencies as named types: the platform, the clock, the calling issuer.

They are `async def` although they wait for nothing: FastAPI runs a plain `def` dependency in its
thread pool, and three hand-offs per request cost more CPU than the work itself (a status read:
~25% of the server's CPU in thread wake-ups, bench/status.py). None of them does I/O.

The two busiest routes, the single-card order and the status read, skip FastAPI's solving of
them: `card_target` makes the same checks, in the same order, for less.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, NamedTuple, TypeVar

from fastapi import Depends, Path, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from issuance.api.errors import schema_problems
from issuance.contract.common import CARD_ID_PATTERN, ISSUER_ID_PATTERN
from issuance.domain.audit import Actor, ActorKind
from issuance.domain.errors import Forbidden, InvalidRequest, Unauthenticated
from issuance.platform import Platform
from issuance.security.tokens import Principal, VerifiedTokens


async def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


ISSUER_ID = "The id of the issuer (10 characters)"
CARD_ID = "Unique identifier of the card"
DRY_RUN = "Extension: validate only, report every problem"

PlatformDep = Annotated[Platform, Depends(get_platform)]
IssuerIdPath = Annotated[
    str, Path(alias="issuerId", pattern=ISSUER_ID_PATTERN, description=ISSUER_ID)
]
CardIdPath = Annotated[str, Path(alias="cardId", pattern=CARD_ID_PATTERN, description=CARD_ID)]
GroupIdPath = Annotated[
    str,
    Path(
        alias="groupId",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="shipment.groupId: the first-level container",
    ),
]
EndpointIdPath = Annotated[
    str, Path(alias="endpointId", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="As configured")
]

_tokens = VerifiedTokens()  # per process; keyed by the signing key, so shared safely


class _BearerToken(SecurityBase):
    """`Authorization: Bearer <access token>`, verified: the OpenAPI document's bearer scheme
    and the check in one dependency.

    FastAPI solves each dependency on its own, about 80,000 instructions a time (valgrind):
    with the scheme as a sub-dependency, and the platform as another, a single-card order had
    four. Merged, and the platform read from the app's state, it has two, and costs 3% less.
    """

    def __init__(self) -> None:
        self.model = HTTPBearerModel(
            bearerFormat="JWT", description="Access token from /authz/v1/oauth2/token"
        )
        self.scheme_name = "HTTPBearer"

    def verified(self, request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(
                "a bearer access token is required", field="Authorization", code="UNAUTHORIZED"
            )
        platform: Platform = request.app.state.platform
        return _tokens.verify(
            token, key=platform.keys.token_key, issuer=platform.settings.token_issuer
        )


class _AnyCaller(_BearerToken):
    async def __call__(self, request: Request) -> Principal:
        """Whoever holds a valid token, issuer or operator (the sandbox controls ask no more)."""
        return self.verified(request)


AnyCaller = Annotated[Principal, Depends(_AnyCaller())]


class _CurrentIssuer(_BearerToken):
    async def __call__(self, request: Request, issuer_id: IssuerIdPath) -> Principal:
        """The caller, who must hold a valid token bound to the issuer named in the path."""
        return self.issuer(request, issuer_id)

    def issuer(self, request: Request, issuer_id: str) -> Principal:
        caller = self.verified(request)
        if caller.operator or caller.issuer_id != issuer_id:
            raise Forbidden(
                f"this token is not valid for issuer {issuer_id}",
                field="issuerId",
                code="ISSUER_MISMATCH",
            )
        return caller


_current_issuer = _CurrentIssuer()
CurrentIssuer = Annotated[Principal, Depends(_current_issuer)]


class _CardPath(BaseModel):
    """A card's path, with the constraints `IssuerIdPath` and `CardIdPath` give other routes."""

    model_config = ConfigDict(frozen=True)

    # the wire's names, so that errors and the schema's titles read as FastAPI writes them
    issuerId: str = Field(pattern=ISSUER_ID_PATTERN, description=ISSUER_ID)  # noqa: N815
    cardId: str = Field(pattern=CARD_ID_PATTERN, description=CARD_ID)  # noqa: N815


class _CardOrderParameters(_CardPath):
    """The single-card order's path and query (`DryRun` of the batch route)."""

    dryRun: bool = Field(False, description=DRY_RUN)  # noqa: N815


class CardTarget(NamedTuple):
    issuer: Principal
    card_id: str
    dry_run: bool = False


def card_target(request: Request) -> CardTarget:
    """The caller and the card of a route on one card, read without FastAPI's dependency
    solving, for the busiest routes: the single-card order and the status read. For the
    order's dependency and three parameters that solving cost 208,000 instructions, 5% of an
    order (bench/intake_instructions.py, 4,133,649 → 3,925,928); the status read's, not
    measured apart, is of the same kind, beside its thread hop on SQLite.

    The same checks as `CurrentIssuer` and `CardIdPath` make, in their order: a malformed
    issuer id is refused with the other malformed parameters, before the token is looked at;
    then the token; then the card id. The route documents its parameters with `CARD_OPENAPI`.
    """
    caller, path = _checked(request, _CardPath, request.path_params)
    return CardTarget(caller, path.cardId)


def card_order_target(request: Request) -> CardTarget:
    """`card_target` with the `dryRun` flag (documented by `CARD_ORDER_OPENAPI`)."""
    given: dict[str, Any] = dict(request.path_params)
    if "dryRun" in request.query_params:
        given["dryRun"] = request.query_params["dryRun"]
    caller, parameters = _checked(request, _CardOrderParameters, given)
    return CardTarget(caller, parameters.cardId, parameters.dryRun)


_Path = TypeVar("_Path", bound=_CardPath)


def _checked(
    request: Request, model: type[_Path], given: Mapping[str, Any]
) -> tuple[Principal, _Path]:
    try:
        parameters = model.model_validate(given)
    except ValidationError as error:
        problems = schema_problems([dict(e) for e in error.errors(include_input=False)])
        if all(problem.field != "issuerId" for problem in problems):
            _current_issuer.issuer(request, given["issuerId"])
        raise InvalidRequest.from_problems(problems) from None
    return _current_issuer.issuer(request, parameters.issuerId), parameters


def _openapi_parameters(model: type[BaseModel], where: dict[str, str]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "in": where[name],
            "required": name in required,
            "schema": field,
            "description": field["description"],
        }
        for name, field in schema["properties"].items()
    ]


_IN = {"issuerId": "path", "cardId": "path", "dryRun": "query"}
CARD_OPENAPI: dict[str, Any] = {
    "security": [{_current_issuer.scheme_name: []}],
    "parameters": _openapi_parameters(_CardPath, _IN),
}
CARD_ORDER_OPENAPI: dict[str, Any] = {
    "security": [{_current_issuer.scheme_name: []}],
    "parameters": _openapi_parameters(_CardOrderParameters, _IN),
}


async def current_operator(caller: AnyCaller) -> Principal:
    """A bureau operator, authenticated by an operator token."""
    if not caller.operator:
        raise Forbidden("this needs an operator token", field="Authorization", code="OPERATOR_ONLY")
    return caller


CurrentOperator = Annotated[Principal, Depends(current_operator)]


def actor_of(principal: Principal) -> Actor:
    """The caller as the audit trail names it: an issuer's API client or a bureau operator."""
    if principal.operator:
        return Actor(ActorKind.OPERATOR, principal.client_id)
    return Actor(ActorKind.ISSUER, principal.client_id, principal.issuer_id)

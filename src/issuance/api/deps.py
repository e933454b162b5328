"""Dependencies as named types: the platform, the clock, the calling issuer.

They are `async def` although they wait for nothing: FastAPI runs a plain `def` dependency in its
thread pool, and three hand-offs per request cost more CPU than the work itself (a status read:
~25% of the server's CPU in thread wake-ups, bench/status.py). None of them does I/O.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from issuance.contract.common import CARD_ID_PATTERN, ISSUER_ID_PATTERN
from issuance.domain.audit import Actor, ActorKind
from issuance.domain.errors import Forbidden, Unauthenticated
from issuance.platform import Platform
from issuance.security.tokens import Principal, VerifiedTokens


async def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]
IssuerIdPath = Annotated[
    str,
    Path(
        alias="issuerId",
        pattern=ISSUER_ID_PATTERN,
        description="The id of the issuer (10 characters)",
    ),
]
CardIdPath = Annotated[
    str, Path(alias="cardId", pattern=CARD_ID_PATTERN, description="Unique identifier of the card")
]
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

_bearer = HTTPBearer(
    auto_error=False, bearerFormat="JWT", description="Access token from /authz/v1/oauth2/token"
)


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
_tokens = VerifiedTokens()  # per process; keyed by the signing key, so shared safely


def _verified(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None:
        raise Unauthenticated(
            "a bearer access token is required", field="Authorization", code="UNAUTHORIZED"
        )
    platform: Platform = request.app.state.platform
    return _tokens.verify(
        credentials.credentials,
        key=platform.keys.token_key,
        issuer=platform.settings.token_issuer,
    )


async def any_caller(request: Request, credentials: BearerCredentials) -> Principal:
    """Whoever holds a valid token, issuer or operator (the sandbox controls ask no more)."""
    return _verified(request, credentials)


AnyCaller = Annotated[Principal, Depends(any_caller)]


async def current_issuer(
    request: Request, issuer_id: IssuerIdPath, credentials: BearerCredentials
) -> Principal:
    """The caller, who must hold a valid token bound to the issuer named in the path.

    It verifies the token itself rather than through `AnyCaller`: two sub-dependencies fewer
    took FastAPI's resolver from 22.5% to 18.7% of a status read's CPU (py-spy).
    """
    caller = _verified(request, credentials)
    if caller.operator or caller.issuer_id != issuer_id:
        raise Forbidden(
            f"this token is not valid for issuer {issuer_id}",
            field="issuerId",
            code="ISSUER_MISMATCH",
        )
    return caller


CurrentIssuer = Annotated[Principal, Depends(current_issuer)]


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

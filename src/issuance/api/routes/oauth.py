"""`POST /authz/v1/oauth2/token`: D1's JWT-bearer grant, and client credentials for the sandbox."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from issuance.api.bodies import is_json, parsed_json
from issuance.api.client_certificates import presented_fingerprint
from issuance.api.deps import PlatformDep
from issuance.domain.errors import InvalidRequest, Unauthenticated
from issuance.security.tokens import SCOPE, Principal, issue_token
from issuance.services import authentication

router = APIRouter(tags=["OAuth2"])

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_CREDENTIALS = "client_credentials"


def _basic(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated(
            "malformed Basic credentials", field="Authorization", code="INVALID_CLIENT"
        ) from None
    return client_id, secret


async def _form_or_json(request: Request) -> dict[str, Any]:
    if is_json(request.headers.get("content-type", "")):
        body = parsed_json(await request.body())
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a JSON object", code="INVALID_JSON")
        return body
    return dict((await request.form()).items())


@router.post(
    "/authz/v1/oauth2/token",
    summary="Get an access token",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {
                                "type": "string",
                                "enum": [JWT_BEARER, CLIENT_CREDENTIALS],
                            },
                            "assertion": {
                                "type": "string",
                                "description": "ES256 JWT (jwt-bearer grant)",
                            },
                            "client_id": {
                                "type": "string",
                                "description": "client_credentials grant",
                            },
                            "client_secret": {
                                "type": "string",
                                "description": "client_credentials grant",
                            },
                        },
                    }
                }
            }
        }
    },
    responses={
        400: {"description": "Missing or unsupported grant"},
        401: {"description": "Bad credentials"},
    },
)
async def get_token(
    request: Request,
    platform: PlatformDep,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Exchange credentials for a bearer token bound to one issuer (default lifetime 15 minutes)."""
    params = await _form_or_json(request)
    grant = params.get("grant_type")
    certificate = presented_fingerprint(request, header=platform.settings.client_certificate_header)
    principal: Principal
    if grant == JWT_BEARER:
        assertion = params.get("assertion")
        if not isinstance(assertion, str) or not assertion:
            raise InvalidRequest(
                "is required for the jwt-bearer grant", field="assertion", code="FIELD_MISSING"
            )
        principal = authentication.by_assertion(
            assertion, uow=platform.reader(), certificate=certificate
        )
    elif grant == CLIENT_CREDENTIALS:
        credentials = _basic(authorization) or (
            str(params.get("client_id", "")),
            str(params.get("client_secret", "")),
        )
        principal = authentication.by_client_secret(
            *credentials, uow=platform.reader(), certificate=certificate
        )
    else:
        raise InvalidRequest(
            f"must be {JWT_BEARER} or {CLIENT_CREDENTIALS}",
            field="grant_type",
            code="UNSUPPORTED_GRANT_TYPE",
        )
    settings = platform.settings
    token = issue_token(
        principal, key=platform.keys.token_key, issuer=settings.token_issuer, ttl=settings.token_ttl
    )
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": settings.token_ttl,
        "scope": SCOPE,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})

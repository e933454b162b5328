"""Console login and logout: an operator id and secret, checked as the token endpoint checks them."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from issuance.api.console.rendering import render, safe_next
from issuance.api.console.session import (
    PATH,
    CheckedForm,
    clear_session,
    new_session,
    read_session,
    write_session,
)
from issuance.api.deps import PlatformDep
from issuance.domain.errors import Unauthenticated
from issuance.platform import Platform
from issuance.services import authentication

router = APIRouter(prefix=PATH, include_in_schema=False)


def _operator(operator_id: str, secret: str, platform: Platform) -> str | None:
    """The operator id when the secret is an operator's (an issuer client's is not enough)."""
    try:
        principal = authentication.by_client_secret(operator_id, secret, uow=platform.reader())
    except Unauthenticated:
        return None
    return principal.client_id if principal.operator else None


@router.get("/login")
def login_form(request: Request, platform: PlatformDep, next: str | None = None) -> Response:
    session = read_session(request, platform)
    if session is not None and session.operator_id is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    session = session or new_session()
    page = render(request, "login.html", {"next": safe_next(next)}, session=session)
    write_session(page, session, platform=platform, secure=request.url.scheme == "https")
    return page


@router.post("/login")
def login(
    request: Request,
    platform: PlatformDep,
    operator_id: Annotated[str, Form(max_length=64)] = "",
    secret: Annotated[str, Form(max_length=256)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = PATH,
) -> Response:
    """A wrong secret and an unknown operator get the same answer (no operator enumeration)."""
    secure = request.url.scheme == "https"
    pending = read_session(request, platform)
    if pending is None or not hmac.compare_digest(pending.csrf.encode(), csrf.encode()):
        error, status, operator = "The login form expired. Please sign in again.", 403, None
    else:
        operator = _operator(operator_id.strip(), secret, platform)
        error, status = "Unknown operator or wrong secret.", 401
    if operator is None:
        retry = new_session()
        context = {"next": safe_next(next), "error": error, "operator_id_value": operator_id}
        page = render(request, "login.html", context, session=retry, status_code=status)
        write_session(page, retry, platform=platform, secure=secure)
        return page
    response = RedirectResponse(safe_next(next), status_code=303)
    write_session(response, new_session(operator), platform=platform, secure=secure)
    return response


@router.post("/logout")
def logout(_session: CheckedForm) -> Response:
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    clear_session(response)
    return response

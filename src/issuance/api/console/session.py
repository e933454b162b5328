"""Console sessions: a signed cookie naming the operator, and the CSRF token of its forms.

The cookie is HttpOnly (scripts cannot read it), SameSite=Strict (no other site's page sends it)
and signed with a key derived from the token key, so it cannot be forged; it expires after
`SESSION_SECONDS`. Every POST form carries the session's CSRF token, compared in constant time:
SameSite already stops cross-site posts in current browsers, the token also covers older ones.
Before login the cookie holds no operator, only the CSRF token of the login form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from issuance.api.deps import PlatformDep
from issuance.platform import Platform

COOKIE = "issuance_console"
PATH = "/console"
SESSION_SECONDS = 8 * 3600  # one working shift, then log in again


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    operator_id: str | None = None


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, live fragments answer 401."""


class CsrfRefused(Exception):
    """A form came without this session's CSRF token (forged, or from an expired page)."""


def signer(platform: Platform, purpose: str) -> URLSafeTimedSerializer:
    """Signs console cookies with a key derived from the token key (one secret to rotate)."""
    key = hmac.new(platform.keys.token_key.raw_value, b"issuance/console", hashlib.sha256)
    return URLSafeTimedSerializer(key.digest(), salt=f"issuance.console.{purpose}")


def read_session(request: Request, platform: Platform) -> Session | None:
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        data = signer(platform, "session").loads(value, max_age=SESSION_SECONDS)
    except BadSignature:  # SignatureExpired included
        return None
    if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
        return None
    operator = data.get("operator")
    return Session(csrf=data["csrf"], operator_id=operator if isinstance(operator, str) else None)


def new_session(operator_id: str | None = None) -> Session:
    """A fresh CSRF token; a new one at login, so a token seen before login is worth nothing."""
    return Session(csrf=secrets.token_urlsafe(32), operator_id=operator_id)


def write_session(
    response: Response, session: Session, *, platform: Platform, secure: bool
) -> None:
    value = signer(platform, "session").dumps(
        {"csrf": session.csrf, "operator": session.operator_id}
    )
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_SECONDS,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


def signed_in(request: Request, platform: PlatformDep) -> Session:
    """The operator's session, or `LoginRequired`."""
    session = read_session(request, platform)
    if session is None or session.operator_id is None:
        raise LoginRequired
    return session


SignedIn = Annotated[Session, Depends(signed_in)]


def csrf_checked(session: SignedIn, csrf: Annotated[str, Form(max_length=128)] = "") -> Session:
    """The session, once the form proved it came from one of its pages."""
    if not hmac.compare_digest(csrf.encode(), session.csrf.encode()):
        raise CsrfRefused
    return session


CheckedForm = Annotated[Session, Depends(csrf_checked)]

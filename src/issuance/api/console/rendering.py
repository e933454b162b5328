"""Rendering console pages: the Jinja2 environment, the context every page gets, flash notices.

Templates autoescape everything. Pages are sent with a Content-Security-Policy that allows only
the console's own script and style sheet, and `no-store`, since they show live operational data.
A notice (the outcome of a form) survives the redirect that follows the POST in a short-lived
signed cookie, so a reload never repeats the action.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature

from issuance.api.console.session import PATH, Session, signer
from issuance.platform import Platform

HERE = Path(__file__).parent
FLASH_COOKIE = "issuance_console_notice"
FLASH_SECONDS = 60  # a notice not shown within a minute is stale
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(moment: datetime | None) -> str:
    """`2026-11-25 14:03:05 UTC`: one zone for every operator, as the API's times."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short(moment: datetime | None) -> str:
    """`2026-11-25 14:03`, UTC: for table columns whose heading says UTC."""
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def span(delta: timedelta) -> str:
    """A duration for people: `2 d 3 h`, `4 h 5 min`, `12 min`, `40 s`."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


@cache
def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=HERE / "templates")
    found.env.filters.update(when=when, short=short, span=span)
    return found


def safe_next(target: str | None, default: str = PATH) -> str:
    """Where to go after a form: a console path only, never another site (`//evil`, `https:`)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PATH) or "\\" in target:
        return default
    return target


def _notice(request: Request, platform: Platform) -> dict[str, Any] | None:
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return None
    try:
        notice = signer(platform, "notice").loads(value, max_age=FLASH_SECONDS)
    except BadSignature:
        return None
    return notice if isinstance(notice, dict) else None


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    session: Session,
    status_code: int = 200,
    fragment: bool = False,
) -> Response:
    """A page with what every template may use; a live `fragment` leaves the notice to its page."""
    platform: Platform = request.app.state.platform
    notice = None if fragment else _notice(request, platform)
    page = templates().TemplateResponse(
        request,
        name,
        {
            "operator_id": session.operator_id,
            "csrf": session.csrf,
            "sandbox": platform.sandbox_clock is not None,
            "notice": notice,
            "here": request.url.path,
            "here_with_query": request.url.path
            + (f"?{request.url.query}" if request.url.query else ""),
            **context,
        },
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    if notice is not None:
        page.delete_cookie(FLASH_COOKIE, path=PATH)
    return page


def redirect_with_notice(
    request: Request, target: str | None, text: str, *, ok: bool = True
) -> RedirectResponse:
    """303 to a console page that will show `text` once (the POST-redirect-GET pattern)."""
    platform: Platform = request.app.state.platform
    response = RedirectResponse(safe_next(target), status_code=303)
    value = signer(platform, "notice").dumps({"ok": ok, "text": text[:500]})
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=FLASH_SECONDS,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _tag(page: Response) -> str:
    return '"' + hashlib.sha256(bytes(page.body)).hexdigest()[:32] + '"'


def live_tag(request: Request, name: str, context: dict[str, Any], *, session: Session) -> str:
    """The ETag the live fragment has now: a page embeds it, so its first poll is a 304."""
    return _tag(render(request, name, context, session=session, fragment=True))


def live(request: Request, name: str, context: dict[str, Any], *, session: Session) -> Response:
    """A live fragment, or 304 when it is what the page shows already (its ETag matches), so
    a page polling every second or two costs one render and no transfer while nothing moves."""
    page = render(request, name, context, session=session, fragment=True)
    tag = _tag(page)
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "no-store"})
    page.headers["ETag"] = tag
    return page

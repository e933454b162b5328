"""The operations console (`/console`): server-rendered pages for bureau operators.

An adapter like the API routes: it reads through the db read functions and acts through the
same services, behind an operator login. Pages are Jinja2 templates; a small script polls live
fragments so the pipeline and card pages follow orders as they move. No build step, nothing
fetched from elsewhere at run time.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from issuance.api.console import (
    actions,
    auth,
    containers,
    notifications,
    orders,
    overview,
    queues,
    sandbox,
)
from issuance.api.console.rendering import HERE, render
from issuance.api.console.session import (
    PATH,
    CsrfRefused,
    LoginRequired,
    new_session,
    read_session,
)

LIVE_PREFIX = f"{PATH}/live/"


def install(app: FastAPI) -> None:
    """Add the console's routes, its static files and its two refusals to `app`."""
    for module in (auth, overview, orders, actions, queues, containers, notifications, sandbox):
        app.include_router(module.router)
    app.mount(f"{PATH}/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _error: LoginRequired) -> Response:
        """Pages go to the login form and come back; a live fragment gets a 401 (its script
        then sends the whole page to the login form); a form posted after the session ended
        changes nothing and leads to the login form."""
        if request.url.path.startswith(LIVE_PREFIX):
            return PlainTextResponse("sign in again", status_code=401)
        target = request.url.path if request.method == "GET" else PATH
        if request.method == "GET" and request.url.query:
            target += f"?{request.url.query}"
        return RedirectResponse(f"{PATH}/login?next={quote(target, safe='/')}", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _error: CsrfRefused) -> Response:
        session = read_session(request, request.app.state.platform) or new_session()
        return render(request, "refused.html", {}, session=session, status_code=403)

"""`create_app(settings)`: the FastAPI application, built by the entry point, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from issuance import __version__
from issuance.api.console import install as install_console
from issuance.api.errors import install_error_handlers
from issuance.api.links import add_links
from issuance.api.middleware import RequestContext
from issuance.api.routes import (
    audit,
    batches,
    containers,
    deliveries,
    feed,
    issuer_actions,
    oauth,
    operator,
    order_files,
    production,
    sandbox,
    status,
)
from issuance.api.routes.meta import router as meta_router
from issuance.api.routes.metrics import router as metrics_router
from issuance.contract.orders import CardOrderRequest, CardsOrderRequest
from issuance.db.intake_on_loop import intake_on_loop
from issuance.db.status_reads import StatusReads
from issuance.delivery.worker import DeliveryThread
from issuance.platform import Platform
from issuance.services.import_runs import ImportThread
from issuance.settings import Settings
from issuance.simulation import SimulatorThread

DESCRIPTION = """
Central card issuance speaking the Thales D1 physical-card API: obtain a token, order a card
(or a batch), follow its production on demand. Field names, paths and enums are D1's; our
extensions (`dryRun`, `sequence`, per-card batch results, JWKS) are additive.

Errors carry `errorCode` (machine-readable) and `error` (a message naming the field), plus
`field` and, when there are several, `problems`.
"""


def create_app(settings: Settings, *, platform: Platform | None = None) -> FastAPI:
    """The application; `platform` may be injected (tests), else it is built from `settings`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threads: list[SimulatorThread | DeliveryThread | ImportThread] = []
        if settings.simulator_enabled:
            threads.append(SimulatorThread(app.state.platform))
        if settings.delivery_in_server:
            threads.append(DeliveryThread(app.state.platform))
        if settings.imports_in_server:
            app.state.import_thread = order_files.import_thread(app.state.platform)
            threads.append(app.state.import_thread)
        for thread in threads:
            thread.start()
        to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        async with _status_reads_on_this_loop(app), _intake_on_this_loop(app):
            yield
        for thread in threads:
            thread.stop()
        if platform is None:
            app.state.platform.close()

    app = FastAPI(title="issuance", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.platform = platform or Platform.build(settings)
    install_error_handlers(app)
    routers = (
        oauth.router,
        production.router,
        order_files.router,
        status.router,
        feed.router,
        issuer_actions.router,
        operator.router,
        containers.operator_router,
        containers.issuer_router,
        batches.router,
        audit.router,
        deliveries.router,
        sandbox.router,
        meta_router,
        metrics_router,
    )
    for router in routers:
        app.include_router(router)
    install_console(app)
    app.add_middleware(
        RequestContext,
        max_body_bytes=settings.max_body_bytes,
        log_bodies=settings.body_logging,
        streamed=order_files.STREAMED_PATHS,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def _status_reads_on_this_loop(app: FastAPI) -> AsyncIterator[None]:
    """On PostgreSQL, status reads run on the serving loop (db/status_reads.py)."""
    engine = app.state.platform.engine
    if engine.dialect.name != "postgresql":
        yield
        return
    reads = StatusReads(engine.url)
    await reads.open()
    app.state.status_reads = reads
    try:
        yield
    finally:
        del app.state.status_reads
        await reads.close()


@asynccontextmanager
async def _intake_on_this_loop(app: FastAPI) -> AsyncIterator[None]:
    """Single-card orders commit their groups on the serving loop (db/intake_on_loop.py)."""
    platform: Platform = app.state.platform
    clock_blocks = platform.sandbox_clock is not None  # it reads the database
    async with intake_on_loop(
        platform.engine, platform.statistics, clock_blocks=clock_blocks
    ) as on_loop:
        app.state.intake_on_loop = on_loop
        try:
            yield
        finally:
            del app.state.intake_on_loop


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the order bodies' schemas (the routes parse them: not inferred) and
    the links from an answer to what can be called next (api/links.py)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for body in (CardOrderRequest, CardsOrderRequest):
            schema = body.model_json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}"
            )
            schemas.update(schema.pop("$defs", {}))
            schemas[body.__name__] = schema
        add_links(document)
        app.openapi_schema = document
    return app.openapi_schema

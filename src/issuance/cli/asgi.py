"""The ASGI factory uvicorn calls in each server process (settings from the environment)."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from issuance.api.app import create_app
from issuance.logging import configure_logging
from issuance.settings import Settings


def app_from_environment() -> FastAPI:
    settings = Settings()
    configure_logging(json_output=settings.json_logs)
    app = create_app(settings)
    settle_garbage_collector()
    return app


def settle_garbage_collector() -> None:
    """Exempt what start-up built (modules, routes, schemas: ~150,000 objects) from collection.

    A full collection walks every tracked object: with the app loaded that is a 30-90 ms pause,
    every few seconds under load, and it was most of the status read's p99 (bench/status.py).
    Frozen objects are still freed by reference counting; only cycles among them are kept.
    """
    gc.collect()
    gc.freeze()

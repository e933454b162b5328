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


# Allocations between two young collections (CPython's default is 700). A request allocates
# thousands of objects, most of them freed by reference counting: at 700 the collector ran
# about every 35 orders at saturation and cost 1.5% of the order's CPU (timed in process with
# gc.callbacks); at 10,000 it runs a tenth as often, for at most about a megabyte of cyclic
# garbage waiting a little longer.
YOUNG_GENERATION_THRESHOLD = 10_000


def settle_garbage_collector() -> None:
    """Exempt what start-up built (modules, routes, schemas: ~150,000 objects) from collection,
    and collect the young generation less often.

    A full collection walks every tracked object: with the app loaded that is a 30-90 ms pause,
    every few seconds under load, and it was most of the status read's p99 (bench/status.py).
    Frozen objects are still freed by reference counting; only cycles among them are kept.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)

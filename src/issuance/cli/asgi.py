"""The ASGI factory uvicorn calls in each server process (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from issuance.api.app import create_app
from issuance.logging import configure_logging
from issuance.settings import Settings


def app_from_environment() -> FastAPI:
    settings = Settings()
    configure_logging(json_output=settings.log_json)
    return create_app(settings)

"""Extensions around the D1 API: the encryption JWKS and a health check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from issuance.api.deps import PlatformDep

router = APIRouter(tags=["Platform"])


@router.get("/.well-known/jwks.json", summary="Public keys to encrypt encryptedData for")
def jwks(platform: PlatformDep) -> dict[str, Any]:
    """EC P-256 keys (ECDH-ES + A256GCM). Put the `kid` of one in the JWE header."""
    return platform.keys.public_jwks()


@router.get("/health", summary="Liveness and database reachability")
def health(platform: PlatformDep) -> dict[str, str]:
    with platform.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return {"status": "ok"}

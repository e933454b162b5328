"""Loading and showing the platform configuration."""

from __future__ import annotations

from typing import Any

from issuance.domain.configuration import PlatformConfig
from issuance.services.unit_of_work import UnitOfWork


def load_config(config: PlatformConfig, *, uow: UnitOfWork) -> None:
    """Store `config` (validated already); orders placed before keep their references."""
    with uow:
        uow.config.replace(config)
        uow.commit()


def current_config(*, uow: UnitOfWork) -> dict[str, Any] | None:
    """The loaded configuration as a document: client secrets as hashes, signing secrets masked."""
    with uow:
        config = uow.config.current()
    if config is None:
        return None
    document = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    for issuer in document["issuers"]:
        for endpoint in issuer.get("notificationEndpoints", []):
            endpoint["signingSecrets"] = [
                "whsec_********" for _ in endpoint.get("signingSecrets", [])
            ]
    return document

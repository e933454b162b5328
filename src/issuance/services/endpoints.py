"""The notification endpoints the loaded configuration names: the only ones operators act on.

Enabling or pinging an endpoint that is not configured would be a typo acted upon (or, for a
ping, a request to anywhere), so both look the endpoint up here first.
"""

from __future__ import annotations

from issuance.domain.errors import NotFound
from issuance.domain.parties import NotificationEndpoint
from issuance.services.unit_of_work import UnitOfWork


def configured_endpoints(*, uow: UnitOfWork) -> list[tuple[str, NotificationEndpoint]]:
    """(issuer id, endpoint) of every issuer's endpoints, in configuration order."""
    with uow:
        config = uow.config.current()
    issuers = config.issuers if config else ()
    return [(i.issuer_id, e) for i in issuers for e in i.notification_endpoints]


def configured_endpoint(
    issuer_id: str, endpoint_id: str, *, uow: UnitOfWork
) -> NotificationEndpoint:
    """The endpoint, or NotFound naming what is missing."""
    with uow:
        issuer = uow.config.issuer(issuer_id)
    if issuer is None:
        raise NotFound(f"no issuer {issuer_id}", field="issuerId", code="ISSUER_NOT_FOUND")
    for endpoint in issuer.notification_endpoints:
        if endpoint.endpoint_id == endpoint_id:
            return endpoint
    raise NotFound(
        f"issuer {issuer_id} has no notification endpoint {endpoint_id}",
        field="endpointId",
        code="ENDPOINT_NOT_FOUND",
    )

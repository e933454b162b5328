"""The issuer kit: what an issuer backend needs to order physical cards and follow them.

* `AsyncIssuerClient` / `IssuerClient`: the D1 ordering and status API, with token caching,
  idempotent retries, field encryption and typed errors (`errors.py`).
* `Receiver` + `CardStore`: the notification endpoint, storing each card's state once per real
  change and calling the issuer's handler after the commit.
* `reconcile`: fills what notifications missed, from the change feed or `productionStatus`.

It imports only the shared D1 contract and field encryption from the platform, never its server
side (an import-linter contract says so), so it works against a real D1 endpoint too.
"""

from issuance.contract.feed import ChangeFeed
from issuance.kit.auth import ClientSecret, Credentials, PrivateKeyAssertion
from issuance.kit.client import AsyncIssuerClient
from issuance.kit.dispatch import Dispatcher, Handler
from issuance.kit.errors import (
    ApiError,
    AuthenticationFailed,
    BadRequest,
    ChangeFeedUnavailable,
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    InvalidOrder,
    IssuanceError,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    UnexpectedResponse,
)
from issuance.kit.models import CardChange, OrderPlaced
from issuance.kit.receiver import Receiver, create_receiver_app
from issuance.kit.reconciler import ReconcileReport, reconcile, reconcile_blocking
from issuance.kit.retry import RetryPolicy
from issuance.kit.store import CardStore
from issuance.kit.sync import IssuerClient

__all__ = [
    "ApiError",
    "AsyncIssuerClient",
    "AuthenticationFailed",
    "BadRequest",
    "CardChange",
    "CardStore",
    "ChangeFeed",
    "ChangeFeedUnavailable",
    "ClientSecret",
    "Conflict",
    "Credentials",
    "Dispatcher",
    "Forbidden",
    "Handler",
    "IdempotencyKeyReused",
    "InvalidOrder",
    "IssuanceError",
    "IssuerClient",
    "NotFound",
    "OrderPlaced",
    "PrivateKeyAssertion",
    "RateLimited",
    "Receiver",
    "ReconcileReport",
    "RetryPolicy",
    "ServerError",
    "TransportError",
    "UnexpectedResponse",
    "create_receiver_app",
    "reconcile",
    "reconcile_blocking",
]

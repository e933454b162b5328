"""What the issuer kit raises: one tree, so a caller can catch as broadly or narrowly as it needs.

    IssuanceError
    ├── InvalidOrder              refused locally by the shared contract models; nothing was sent
    ├── TransportError            no answer after every retry (connection, timeout)
    ├── UnexpectedResponse        a success answer the contract models cannot read
    ├── ChangeFeedUnavailable     the platform has no change feed (a real D1 does not)
    └── ApiError                  the platform answered with a D1 error body
        ├── BadRequest            400: schema, JWE or configuration (`FIELD_INVALID_FORMAT`, …)
        ├── AuthenticationFailed  401: bad client credentials, or a token refused twice
        ├── Forbidden             403: the token belongs to another issuer (`ISSUER_MISMATCH`)
        ├── NotFound              404: unknown card (`CARD_NOT_FOUND`)
        ├── Conflict              409: an order in progress (`ORDER_IN_PROGRESS`)
        ├── IdempotencyKeyReused  422: the same `issuerRequestId` with another body
        ├── RateLimited           429 after every retry; `retry_after` says how long to wait
        └── ServerError           5xx after every retry

`ApiError` carries D1's `errorCode` and `error`, plus the platform's additive `field` and
`problems`, so callers branch on `error.error_code`, never on message text.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from issuance.contract.operations import ErrorBody


class IssuanceError(Exception):
    """Base of every error the issuer kit raises."""


class InvalidOrder(IssuanceError):
    """The order breaks the D1 contract; found before sending, so nothing was ordered."""

    def __init__(self, field: str | None, error: str) -> None:
        super().__init__(f"{field}: {error}" if field else error)
        self.field = field
        self.error = error


class TransportError(IssuanceError):
    """The platform could not be reached, even after retrying."""


class UnexpectedResponse(IssuanceError):
    """The platform answered 2xx with a body that is not what the contract describes."""


class ChangeFeedUnavailable(IssuanceError):
    """The platform serves no change feed: use `productionStatus` per card instead."""


class ApiError(IssuanceError):
    """The platform refused the call; `error_code` is D1's machine-readable `errorCode`."""

    def __init__(
        self,
        status_code: int,
        error_code: str,
        error: str,
        *,
        field: str | None = None,
        problems: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status_code} {error_code}: {error}")
        self.status_code = status_code
        self.error_code = error_code
        self.error = error
        self.field = field
        self.problems = problems or []
        self.retry_after = retry_after  # seconds, when the platform said


class BadRequest(ApiError):
    pass


class AuthenticationFailed(ApiError):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class IdempotencyKeyReused(ApiError):
    pass


class RateLimited(ApiError):
    pass


class ServerError(ApiError):
    pass


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: IdempotencyKeyReused,
    429: RateLimited,
}


def api_error(response: httpx.Response, *, retry_after: float | None = None) -> ApiError:
    """The typed error for an error response; a body that is not D1's still gives a useful one."""
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = ServerError if response.status_code >= 500 else ApiError
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        reason = response.reason_phrase or "error"
        return kind(response.status_code, "HTTP_ERROR", reason, retry_after=retry_after)
    return kind(
        response.status_code,
        body.error_code,
        body.error,
        field=body.field,
        problems=[dict(p) for p in body.problems or []],
        retry_after=retry_after,
    )

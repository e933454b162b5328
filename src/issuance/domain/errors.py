"""The one error tree of the platform.

Every error a client can cause is a `DomainError` with a stable machine-readable `code`, the
`field` it concerns (a JSON path into the request, such as `services.cardProductId`) and a
message. The docstring of each class is its default message. `api/errors.py` holds the only
mapping from these classes to HTTP statuses.

    DomainError
    ├── InvalidRequest            the request breaks the schema or the issuer's program (400)
    ├── Unauthenticated           missing, expired or forged credentials (401)
    ├── Forbidden                 the credentials are valid but not for this issuer (403)
    ├── NotFound                  no such card or order for this issuer (404)
    ├── Conflict                  the request collides with one in progress (409)
    └── IdempotencyMismatch       an issuerRequestId reused with a different body (422)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request: what, where, and why."""

    code: str
    field: str | None
    message: str


class DomainError(Exception):
    """The request could not be served."""

    code = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        code: str | None = None,
        problems: tuple[Problem, ...] = (),
    ) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        self.field = field
        if code is not None:
            self.code = code
        self.problems = problems
        super().__init__(self.message)

    @property
    def all_problems(self) -> tuple[Problem, ...]:
        """Every problem carried, the headline one first."""
        headline = Problem(self.code, self.field, self.message)
        return (headline, *(p for p in self.problems if p != headline))


class InvalidRequest(DomainError):
    """The request is not valid."""

    code = "INVALID_REQUEST"

    @classmethod
    def from_problems(cls, problems: list[Problem]) -> InvalidRequest:
        """Raise on the first problem while carrying all of them (dry run shows every one)."""
        first = problems[0]
        return cls(first.message, field=first.field, code=first.code, problems=tuple(problems))


class Unauthenticated(DomainError):
    """Missing, invalid or expired credentials."""

    code = "UNAUTHORIZED"


class Forbidden(DomainError):
    """These credentials do not give access to this issuer."""

    code = "FORBIDDEN"


class NotFound(DomainError):
    """No such resource for this issuer."""

    code = "NOT_FOUND"


class Gone(DomainError):
    """The resource existed and was deleted on purpose (kept for a stated time only)."""

    code = "GONE"


class Conflict(DomainError):
    """The request conflicts with the current state of the card."""

    code = "CONFLICT"


class IdempotencyMismatch(DomainError):
    """This issuerRequestId was already used with a different request body."""

    code = "IDEMPOTENCY_KEY_REUSED"


class IllegalTransition(Conflict):
    """This status change is not allowed from the card's current status."""

    code = "ILLEGAL_STATUS_TRANSITION"

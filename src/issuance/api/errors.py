"""The only place where errors become HTTP responses.

Every 4xx body has D1's fields, `errorCode` (machine-readable) and `error` (a message that names the
field), plus our additive `field` and, when there are several, `problems`. Request-schema errors
go through the same shape. A database that cannot be reached (down, restarting, every pooled
connection taken) is 503 `DATABASE_UNAVAILABLE` with `Retry-After`: the client may retry, the
same request again is safe. Other unexpected exceptions stay 500 and are logged, never relabelled.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from issuance.contract.sensitive import is_card_data_key
from issuance.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Gone,
    IdempotencyMismatch,
    InvalidRequest,
    NotFound,
    Problem,
    Unauthenticated,
)

log = structlog.get_logger("issuance.api")

STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (InvalidRequest, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Gone, 410),
    (IdempotencyMismatch, 422),
]

_CODE_BY_PYDANTIC_TYPE = {
    "missing": "FIELD_MISSING",
    "extra_forbidden": "FIELD_UNKNOWN",
    "json_invalid": "INVALID_JSON",
    "enum": "FIELD_INVALID_VALUE",
    "literal_error": "FIELD_INVALID_VALUE",
    "too_long": "FIELD_TOO_MANY_ITEMS",
    "too_short": "FIELD_TOO_FEW_ITEMS",
    "sensitive_data_not_encrypted": "SENSITIVE_DATA_NOT_ENCRYPTED",
}
CLEAR_CARD_DATA = "SENSITIVE_DATA_NOT_ENCRYPTED"
DATABASE_RETRY_AFTER = 5  # seconds: a PostgreSQL restart or failover takes about that
# SQLite's operational errors that mean "not now" rather than a bug (a missing table is a bug).
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file", "disk i/o error")


def http_status(error: DomainError) -> int:
    return next((status for kind, status in STATUS_BY_ERROR if isinstance(error, kind)), 500)


def error_body(problems: tuple[Problem, ...] | list[Problem]) -> dict[str, Any]:
    first = problems[0]
    message = f"{first.field}: {first.message}" if first.field else first.message
    body: dict[str, Any] = {"errorCode": first.code, "error": message}
    if first.field:
        body["field"] = first.field
    if len(problems) > 1:
        body["problems"] = [
            {"errorCode": p.code, "field": p.field, "error": p.message} for p in problems
        ]
    return body


def field_path(location: tuple[int | str, ...]) -> str:
    """`("body", "cards", 3, "services", "issuance")` → `cards[3].services.issuance`."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def schema_problems(errors: list[dict[str, Any]]) -> list[Problem]:
    """Pydantic errors as problems, without ever quoting the input value."""
    problems = []
    for error in errors:
        location = tuple(error.get("loc", ()))
        if location and location[0] in {"body", "path", "query", "header"}:
            location = location[1:]
        if error.get("type") == "json_invalid":
            problems.append(Problem("INVALID_JSON", None, "the body is not valid JSON"))
            continue
        code = _CODE_BY_PYDANTIC_TYPE.get(str(error.get("type")), "FIELD_INVALID_FORMAT")
        field = field_path(location) or None
        message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
        if code == "FIELD_UNKNOWN" and location and is_card_data_key(location[-1]):
            code, message = CLEAR_CARD_DATA, "is card data: send it inside encryptedData (JWE)"
        problems.append(Problem(code, field, message))
    return problems or [Problem("INVALID_REQUEST", None, "the request is not valid")]


def unreadable_body(error: StarletteHTTPException) -> list[Problem]:
    """The 400s FastAPI and Starlette raise themselves, for a body they could not read.

    FastAPI decodes JSON bodies with `json.loads`, and answers only its JSONDecodeError as a
    validation error: bytes that are not text, or nesting deeper than the interpreter's stack,
    came out as a vague `HTTP_ERROR`. A form Starlette cannot split (a multipart body without its
    boundary) is the other case.
    """
    if isinstance(error.__cause__, UnicodeDecodeError | RecursionError):
        return schema_problems([{"type": "json_invalid", "loc": ("body",)}])
    return [Problem("INVALID_BODY", "body", str(error.detail))]


def database_unavailable(error: Exception) -> bool:
    """Whether `error` says the database cannot serve now (503), not that our SQL is wrong (500)."""
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated or isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    if type(error.orig).__module__.startswith("sqlite3"):
        return any(text in str(error.orig).lower() for text in _SQLITE_UNAVAILABLE)
    return True  # the PostgreSQL driver's OperationalError: connection refused, lost, shut down


def unavailable_response() -> JSONResponse:
    body = {
        "errorCode": "DATABASE_UNAVAILABLE",
        "error": "the database is unavailable; retry later (an order retried with its"
        " issuerRequestId is never placed twice)",
    }
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER)})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, error: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthenticated) else None
        return JSONResponse(
            error_body(error.all_problems), status_code=http_status(error), headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _schema(_request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(schema_problems(list(error.errors()))), status_code=400)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def _database(request: Request, error: Exception) -> JSONResponse:
        if not database_unavailable(error):
            return await _unexpected(request, error)
        log.warning("database unavailable", path=request.url.path, error_type=type(error).__name__)
        return unavailable_response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        """A bug, not a client error: logged with its traceback, answered 500, never relabelled."""
        log.error(
            "unhandled error",
            path=request.url.path,
            error_type=type(error).__name__,
            exc_info=error,
        )
        body = {
            "errorCode": "INTERNAL_ERROR",
            "error": "an unexpected error occurred; it has been logged",
        }
        return JSONResponse(body, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:
            return JSONResponse(error_body(unreadable_body(error)), status_code=400)
        codes = {
            404: "NOT_FOUND",
            405: "METHOD_NOT_ALLOWED",
            413: "PAYLOAD_TOO_LARGE",
            415: "UNSUPPORTED_MEDIA_TYPE",
        }
        body = {"errorCode": codes.get(error.status_code, "HTTP_ERROR"), "error": str(error.detail)}
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)

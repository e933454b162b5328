"""One logging set-up for every process: structlog, JSON in production, readable in the sandbox.

The redaction processor is the last line of defence: whatever a caller binds, values under a
sensitive key are dropped and anything that looks like a PAN is masked to first 6 / last 4.
"""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from issuance.contract.sensitive import CARD_DATA_KEYS, mask_pans, normalized_key

# Lower case, without "_" or "-": credentials, the JWE itself, and every name card data goes by
# (PAN, expiry, CSC, tracks, chip data: contract/sensitive.py).
SENSITIVE_KEYS = CARD_DATA_KEYS | frozenset(
    {
        "accesstoken",
        "refreshtoken",
        "clientsecret",
        "encrypteddata",
        "password",
        "secret",
        "assertion",
        "authorization",
        "arqc",
        "iad",
        "icc",
        "emv",
        "cavv",
        "dcvv",
        "icvv",
        "cvc3",
        "pin",
    }
)


def is_sensitive_key(key: object) -> bool:
    """`pan`, `PAN`, `track_data`, `trackData`, `access_token`… all match."""
    return normalized_key(key) in SENSITIVE_KEYS


# Nesting kept in a logged value; deeper is replaced. A client's JSON body may nest a thousand
# levels in a few kilobytes: walked to the end, it overflowed the stack, and the log line of a
# refused request became an unhandled error.
MAX_LOGGED_DEPTH = 32
TOO_DEEP = "[NESTED TOO DEEP]"


def _redact(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return mask_pans(value)
    if isinstance(value, dict | list | tuple) and depth >= MAX_LOGGED_DEPTH:
        return TOO_DEEP
    if isinstance(value, dict):
        return {
            k: "[REDACTED]" if is_sensitive_key(k) else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v, depth + 1) for v in value]
    return value


_PLAIN = (int, float, bool, type(None))  # nothing to mask in these


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():  # values are replaced, keys stay: safe while iterating
        if is_sensitive_key(key):
            event[key] = "[REDACTED]"
        elif not isinstance(value, _PLAIN):
            event[key] = _redact(value)
    return event


def configure_logging(*, json_output: bool, level: int = logging.INFO) -> None:
    """structlog for our events, and the same redaction for other libraries' records.

    `format_exc_info` turns a traceback into plain text before `redact` sees it: a pretty
    traceback rendered later could print local variables, a decrypted PAN among them. The level
    and the timestamp are added after it: we write them, so there is nothing to mask (the
    access log pays for every line).
    """
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    _route_standard_logging(renderer)


def _json_line(event: Any, **_: Any) -> str:
    """orjson: a tenth of `json.dumps`'s time, on every access-log line. What JSON has no type
    for is written as its `repr`, as structlog's own renderer does."""
    try:
        return orjson.dumps(event, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits (a logged body may hold anything)
        return json.dumps(event, default=repr)


_HANDLER_NAME = "issuance-redacting"


def _route_standard_logging(renderer: Any) -> None:
    """Warnings and errors of uvicorn, SQLAlchemy, alembic… rendered like ours, redacted."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(existing)
    root.addHandler(handler)

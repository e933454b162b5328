"""One logging set-up for every process: structlog, JSON in production, readable in the sandbox.

The redaction processor is the last line of defence: whatever a caller binds, values under a
sensitive key are dropped and anything that looks like a PAN is masked to first 6 / last 4.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

from issuance.contract.sensitive import luhn_ok

SENSITIVE_KEYS = frozenset(  # lower case, without "_" or "-"
    {
        "accesstoken",
        "refreshtoken",
        "clientsecret",
        "pan",
        "cvv",
        "cvv1",
        "cvv2",
        "csc",
        "pvv",
        "track1",
        "track2",
        "track3",
        "trackdata",
        "encrypteddata",
        "password",
        "secret",
        "assertion",
        "authorization",
    }
)
_DIGIT_RUN = re.compile(r"\d{10,}")


def _mask(digits: str) -> str:
    if len(digits) >= 13:
        return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
    if luhn_ok(digits):  # a short PAN: first six and last four would be all of it
        return "*" * (len(digits) - 4) + digits[-4:]
    return digits


def mask_pans(text: str) -> str:
    """`4539910012345678` → `453991******5678`: never more than first 6 and last 4.

    Every run of 13 digits or more is masked (a PAN run together with its expiry included); a
    shorter run (PANs may have 10 to 12 digits) is masked to its last four when it passes the
    Luhn check, so ordinary numbers stay readable.
    """
    return _DIGIT_RUN.sub(lambda m: _mask(m.group(0)), text)


def is_sensitive_key(key: object) -> bool:
    """`pan`, `PAN`, `track_data`, `trackData`, `access_token`… all match."""
    return str(key).lower().replace("_", "").replace("-", "") in SENSITIVE_KEYS


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pans(value)
    if isinstance(value, dict):
        return {k: "[REDACTED]" if is_sensitive_key(k) else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        event[key] = "[REDACTED]" if is_sensitive_key(key) else _redact(event[key])
    return event


def configure_logging(*, json_output: bool, level: int = logging.INFO) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )

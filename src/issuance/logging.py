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

SENSITIVE_KEYS = frozenset(
    {
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
        "client_secret",
        "assertion",
        "authorization",
    }
)
_PAN_LIKE = re.compile(r"(?<!\d)(\d{6})\d{3,9}(\d{4})(?!\d)")


def mask_pans(text: str) -> str:
    """`4539910012345678` → `453991******5678`: never more than first 6 and last 4."""
    return _PAN_LIKE.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - 10) + m.group(2), text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pans(value)
    if isinstance(value, dict):
        return {
            k: "[REDACTED]" if str(k).lower() in SENSITIVE_KEYS else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        event[key] = "[REDACTED]" if key.lower() in SENSITIVE_KEYS else _redact(event[key])
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

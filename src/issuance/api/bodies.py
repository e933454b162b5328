"""Request bodies the routes read themselves: JSON in UTF-8, refused the same way wherever.

RFC 8259 JSON is UTF-8; a leading byte order mark is skipped. Another encoding (which
`json.loads` would guess), bytes that do not decode, and nesting deeper than the parser goes are
all `INVALID_JSON`: one code for "this is not a JSON document we read", whichever route it is.
"""

from __future__ import annotations

import json
from typing import Any

from issuance.api.errors import schema_problems
from issuance.domain.errors import InvalidRequest

UTF8_BOM = b"\xef\xbb\xbf"


def json_document(raw: bytes, content_type: str) -> Any:
    """A body that must be there and be JSON, as Python objects."""
    require_json(raw, content_type)
    return parsed_json(raw)


def parsed_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.removeprefix(UTF8_BOM).decode())
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise InvalidRequest.from_problems(
            schema_problems([{"type": "json_invalid", "loc": ("body",)}])
        ) from None


def require_json(raw: bytes, content_type: str) -> None:
    """A body there is, sent as JSON."""
    if not raw:
        raise InvalidRequest.from_problems(
            schema_problems([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
        )
    if not is_json(content_type):
        raise InvalidRequest(  # the header is not quoted: it is the client's text
            "must be application/json", field="Content-Type", code="UNSUPPORTED_CONTENT_TYPE"
        )


def is_json(content_type: str) -> bool:
    """`application/json`, or any `application/…+json`, parameters aside (as FastAPI reads it)."""
    kind = content_type.partition(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )

"""Reading a notification body, `{"operations": [...]}`, without trusting any of it.

Every way a body can be wrong ends as `MalformedBody` with a D1-style code, a message and the
JSON path of the culprit, which the receiver answers as a 400: a sender bug is reported, never a
500. Unknown fields and unknown status values are kept: D1 says statuses are forward-compatible.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from issuance.kit.schema import ID_LENGTH, STATUS_LENGTH
from issuance.kit.store import Incoming


class MalformedBody(Exception):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _location(parts: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)


def _one(index: int, raw: Any) -> Incoming:
    field = f"operations[{index}]"
    if not isinstance(raw, dict):
        raise MalformedBody("FIELD_INVALID_FORMAT", "must be an operation object", field)
    try:
        item = Incoming.of(raw)
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        code = "FIELD_MISSING" if first["type"] == "missing" else "FIELD_INVALID_FORMAT"
        raise MalformedBody(code, first["msg"], field + _location(tuple(first["loc"]))) from None
    operation = item.operation
    limits = {
        "operationId": (operation.operation_id, ID_LENGTH),
        "cardId": (operation.card_id, ID_LENGTH),
        "status": (operation.status, STATUS_LENGTH),
        "details.status": (operation.details.status, STATUS_LENGTH),
    }
    for name, (value, longest) in limits.items():
        if not 1 <= len(value) <= longest:
            message = f"must be 1 to {longest} characters"
            raise MalformedBody("FIELD_INVALID_FORMAT", message, f"{field}.{name}")
    if operation.sequence is not None and (
        isinstance(raw.get("sequence"), bool) or operation.sequence < 1
    ):
        raise MalformedBody(
            "FIELD_INVALID_VALUE", "must be a positive integer", f"{field}.sequence"
        )
    return item


def parse_operations(body: bytes) -> list[Incoming]:
    """The reports of a notification body, in the order sent."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise MalformedBody("INVALID_JSON", "the body is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("operations"), list):
        raise MalformedBody(
            "FIELD_INVALID_FORMAT",
            "the body must be an object with an operations array",
            "operations",
        )
    return [_one(index, raw) for index, raw in enumerate(data["operations"])]

"""OpenAPI links between the operations on one card: what a client can call next, and with what.

An accepted order (202) and each answered card operation (200) link to the card's status, cancel,
hold, release and return decision, the issuer and card taken from the request's own path. Clients
and tools read them; schemathesis follows them to chain calls on the same card
(tests/reliability/test_schemathesis.py).
"""

from __future__ import annotations

from typing import Any

CARD = "/banking/v1/issuers/{issuerId}/physicalCards/{cardId}"
ORDER = ("post", f"{CARD}/operations:production")
CARD_OPERATIONS = {  # link name: (method, path)
    "productionStatus": ("get", f"{CARD}/productionStatus"),
    "cancel": ("post", f"{CARD}/operations:cancel"),
    "hold": ("post", f"{CARD}/operations:hold"),
    "release": ("post", f"{CARD}/operations:release"),
    "returnDecision": ("post", f"{CARD}/returnDecision"),
}
SAME_CARD = {"issuerId": "$request.path.issuerId", "cardId": "$request.path.cardId"}


def add_card_links(document: dict[str, Any]) -> None:
    """Add the links to `document` (FastAPI's OpenAPI), in place."""
    paths = document["paths"]

    def operation(method: str, path: str) -> dict[str, Any]:
        found: dict[str, Any] = paths[path][method]
        return found

    links = {
        name: {
            "operationId": operation(method, path)["operationId"],
            "parameters": dict(SAME_CARD),
            "description": f"The same card's {name}",
        }
        for name, (method, path) in CARD_OPERATIONS.items()
    }
    operation(*ORDER)["responses"]["202"]["links"] = links
    for method, path in CARD_OPERATIONS.values():
        answered = operation(method, path)["responses"]["200"]
        answered["links"] = links

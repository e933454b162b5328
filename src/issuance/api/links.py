"""OpenAPI links: what a client can call next after an answer, and with which values.

- An accepted order (202) and each answered card operation (200) link to the same card's status,
  cancel, hold, release and return decision, the issuer and card taken from the request's path.
- An accepted order file (202) links to its import's progress and report, by the `importId` of
  the answer.

Clients and tools read them; schemathesis follows them to chain calls on the same card
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

FILES = "/banking/v1/issuers/{issuerId}/orderFiles"
UPLOAD = ("post", FILES)
IMPORT_OPERATIONS = {
    "importProgress": ("get", f"{FILES}/{{importId}}"),
    "importReport": ("get", f"{FILES}/{{importId}}/report"),
}
SAME_IMPORT = {"issuerId": "$request.path.issuerId", "importId": "$response.body#/importId"}


def add_links(document: dict[str, Any]) -> None:
    """Add the links to `document` (FastAPI's OpenAPI), in place."""
    paths = document["paths"]

    def responses(method: str, path: str) -> dict[str, Any]:
        found: dict[str, Any] = paths[path][method]["responses"]
        return found

    def links(
        targets: dict[str, tuple[str, str]], parameters: dict[str, str], what: str
    ) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "operationId": paths[path][method]["operationId"],
                "parameters": dict(parameters),
                "description": f"{what}: {name}",
            }
            for name, (method, path) in targets.items()
        }

    card = links(CARD_OPERATIONS, SAME_CARD, "The same card")
    responses(*ORDER)["202"]["links"] = card
    for method, path in CARD_OPERATIONS.values():
        responses(method, path)["200"]["links"] = card
    responses(*UPLOAD)["202"]["links"] = links(IMPORT_OPERATIONS, SAME_IMPORT, "This import")

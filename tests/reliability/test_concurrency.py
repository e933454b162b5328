"""Concurrency and isolation over real HTTP, on both databases.

100 clients send the same order (same card, same `issuerRequestId`, same body) at the same
instant: exactly one order exists afterwards, and every client is answered 202 with its
operationId (a loser of the race is answered as a replay of the winner; the platform's
409 CONCURRENT_REQUEST, which D1 clients retry, is counted and must not appear either).

Isolation: another issuer's token on every path of this issuer's (every route of the OpenAPI
document with an `{issuerId}`, the extensions and the sandbox included) is refused 403 or 404,
without a word of this issuer's card; an issuer token on every operator path is refused 401/403.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import func, select

from issuance.db.models import EventRow, OrderRow
from tests.conftest import Server
from tests.factories import DEMO, OTHER, IssuerClient, new_card_id, order_body
from tests.reliability.summary import Row, record

CLIENTS = 100


def test_100_simultaneous_identical_orders_make_one_order(
    server: Server, http: httpx.Client, record_property: Callable[[str, object], None]
) -> None:
    issuer = IssuerClient(http)
    card_id = new_card_id()
    body = order_body(issuer.encrypt())
    path = f"/banking/v1/issuers/{DEMO}/physicalCards/{card_id}/operations:production"
    start = threading.Barrier(CLIENTS)

    def order(_: int) -> tuple[int, str]:
        with httpx.Client(base_url=server.base_url, timeout=60) as own:
            start.wait()
            answer = own.post(path, json=body, headers=issuer.headers)
        payload = answer.json()
        return answer.status_code, str(payload.get("operationId") or payload.get("errorCode"))

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(order, range(CLIENTS)))

    with server.platform.engine.connect() as connection:
        orders = connection.scalar(
            select(func.count()).select_from(OrderRow).where(OrderRow.card_id == card_id)
        )
        events = connection.scalar(
            select(func.count()).select_from(EventRow).where(EventRow.card_id == card_id)
        )
    statuses = Counter(status for status, _ in answers)
    kind = server.platform.engine.dialect.name
    record(
        record_property,
        Row(
            f"100 identical orders ({kind})",
            int(orders or 0),
            int(events or 0),
            0,
            int(orders or 0) - 1,
            sum(n for status, n in statuses.items() if status >= 500),
            ", ".join(f"{n}x {status}" for status, n in sorted(statuses.items())),
        ),
    )
    assert orders == 1
    assert events == 1
    assert statuses == {202: CLIENTS}, answers
    assert len({operation for _, operation in answers}) == 1


def _probes(document: dict[str, Any], card_id: str) -> list[tuple[str, str]]:
    """(method, path) of every route of an issuer, filled in for DEMOBANK01's card."""
    values = {"issuerId": DEMO, "cardId": card_id, "endpointId": "main"}
    probes = []
    for template, operations in document["paths"].items():
        if "{issuerId}" not in template or template.startswith("/operator/"):
            continue
        path = template
        for name, value in values.items():
            path = path.replace("{" + name + "}", value)
        probes += [(method.upper(), path) for method in operations]
    return probes


def test_another_issuers_token_reaches_nothing_of_this_issuer(
    server: Server, http: httpx.Client, record_property: Callable[[str, object], None]
) -> None:
    demo, other = IssuerClient(http, DEMO), IssuerClient(http, OTHER)
    card_id = new_card_id()
    body = order_body(demo.encrypt(), consumerId="consumer-secret-42")
    placed = demo.order(card_id, body)
    assert placed.status_code == 202
    # What only DEMOBANK01 knows (the card id is the prober's own input, echoed in messages).
    secrets = (placed.json()["operationId"], "consumer-secret-42", body["issuerRequestId"])
    document = http.get("/openapi.json").json()
    probes = _probes(document, card_id)
    assert len(probes) >= 10, probes  # the routes are all there to be probed

    answers: list[tuple[str, str, int, str]] = []
    oracles = []  # a card that exists must not answer otherwise than one that does not
    for method, path in probes:
        json_body = body if path.endswith("operations:production") else {}
        answer = http.request(method, path, headers=other.headers, json=json_body)
        answers.append((method, path, answer.status_code, answer.text))
        twin = http.request(
            method, path.replace(card_id, new_card_id()), headers=other.headers, json=json_body
        )
        if (twin.status_code, twin.json().get("errorCode")) != (
            answer.status_code,
            answer.json().get("errorCode"),
        ):
            oracles.append((method, path))
    # Its own routes, asked about this issuer's card: nothing is found, and nothing shows.
    own = [
        ("GET", f"/banking/v1/issuers/{OTHER}/physicalCards/{card_id}/productionStatus"),
        ("POST", f"/banking/v1/issuers/{OTHER}/physicalCards/{card_id}/operations:cancel"),
        ("GET", f"/banking/v1/issuers/{OTHER}/operations"),
    ]
    for method, path in own:
        answer = http.request(method, path, headers=other.headers)
        answers.append((method, path, answer.status_code, answer.text))
    operator_paths = [
        p for p, ops in document["paths"].items() if p.startswith("/operator/") and "get" in ops
    ]
    operator_paths = [p.replace("{deliveryId}", "1") for p in operator_paths]
    for path in operator_paths:
        answer = http.get(path, headers=other.headers)
        answers.append(("GET", path, answer.status_code, answer.text))

    leaks = [(m, p) for m, p, _, text in answers if any(secret in text for secret in secrets)]
    refused = {403, 404}
    wrong = [
        (m, p, status)
        for m, p, status, _ in answers
        if status not in (refused if not p.startswith("/operator/") else {401, 403})
        and not (p.endswith(f"/{OTHER}/operations") and status == 200)  # its own, empty feed
    ]
    record(
        record_property,
        Row(
            f"issuer isolation ({server.platform.engine.dialect.name})",
            1,
            0,
            len(leaks),
            0,
            sum(1 for *_, status, _ in answers if status >= 500),
            f"{len(answers)} probes: "
            + ", ".join(f"{n}x {s}" for s, n in sorted(Counter(a[2] for a in answers).items())),
        ),
    )
    assert leaks == []
    assert wrong == []
    assert oracles == []

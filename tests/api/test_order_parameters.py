"""The single-card order and the status read take their path, query and token themselves
(api/deps.py `card_target`), not through FastAPI's dependencies: they must answer as the routes
that use them do (here the issuer's release), and be documented as they are."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import DEMO, OTHER, IssuerClient, new_card_id, order_body

PREFIX = "/banking/v1/issuers/{issuer}/physicalCards"


def _answer(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("issuer_id", "card_id", "token"),
    [
        ("DEMOBANK", "card-1", "own"),  # a malformed issuer id
        ("DEMOBANK", "has space", "own"),  # both malformed: both listed
        ("DEMOBANK", "card-1", None),  # the issuer id is refused before the token is read
        (DEMO, "has space", None),  # the token before the card id
        (DEMO, "has space", "garbage"),
        (DEMO, "has space", "other"),  # another issuer's token: 403 before the card id
        (OTHER, "card-1", "own"),
        (DEMO, "x" * 49, "own"),
    ],
)
def test_bad_paths_and_tokens_are_answered_as_by_a_route_fastapi_solves(
    http: httpx.Client, issuer_id: str, card_id: str, token: str | None
) -> None:
    demo, other = IssuerClient(http, DEMO), IssuerClient(http, OTHER)
    headers = {
        "own": demo.headers,
        "other": other.headers,
        "garbage": {"Authorization": "Bearer not-a-jwt"},
        None: {},
    }[token]
    base = PREFIX.format(issuer=issuer_id)
    ordered = http.post(
        f"{base}/{card_id}/operations:production",
        json=order_body(demo.encrypt()),
        headers=headers,
    )
    read = http.get(f"{base}/{card_id}/productionStatus", headers=headers)
    lowercase = f"/banking/v1/issuers/{issuer_id}/physicalcards/{card_id}/productionstatus"
    read_lowercase = http.get(lowercase, headers=headers)
    released = http.post(f"{base}/{card_id}/operations:release", headers=headers)

    assert released.status_code in {400, 401, 403}, released.text
    assert _answer(ordered) == _answer(read) == _answer(read_lowercase) == _answer(released)


@pytest.mark.parametrize("value", ["maybe", "", "2"])
def test_a_bad_dry_run_flag_is_answered_as_by_the_batch_route(
    http: httpx.Client, value: str
) -> None:
    issuer = IssuerClient(http)
    card = {"cardId": new_card_id(), **order_body(issuer.encrypt())}
    single = issuer.order(card["cardId"], order_body(issuer.encrypt()), dryRun=value)
    batch = issuer.order_batch([card], dryRun=value)

    assert single.status_code == 400
    assert single.json()["field"] == "dryRun"
    assert _answer(single) == _answer(batch)


@pytest.mark.parametrize(("value", "status"), [("1", 200), ("on", 200), ("false", 202)])
def test_the_dry_run_flag_reads_as_fastapi_reads_booleans(
    http: httpx.Client, value: str, status: int
) -> None:
    issuer = IssuerClient(http)
    card_id = new_card_id()
    answer = issuer.order(card_id, order_body(issuer.encrypt()), dryRun=value)

    assert answer.status_code == status, answer.text
    assert (issuer.status(card_id).status_code == 200) is (status == 202)


def test_they_are_documented_with_the_parameters_and_scheme_of_the_other_routes(
    http: httpx.Client,
) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    base = PREFIX.format(issuer="{issuerId}")
    single = paths[f"{base}/{{cardId}}/operations:production"]["post"]
    status = paths[f"{base}/{{cardId}}/productionStatus"]["get"]
    release = paths[f"{base}/{{cardId}}/operations:release"]["post"]
    batch = paths[f"{base}/operations:production"]["post"]

    def by_name(operation: dict[str, Any]) -> dict[str, Any]:
        return {parameter["name"]: parameter for parameter in operation["parameters"]}

    assert by_name(status) == by_name(release)
    assert by_name(single) == {**by_name(release), "dryRun": by_name(batch)["dryRun"]}
    assert single["security"] == status["security"] == release["security"]

"""`/openapi.json` and `/docs` describe every endpoint and error in D1's field names."""

from __future__ import annotations

import re

import httpx

from issuance.contract.sensitive import luhn_ok


def test_openapi_describes_the_d1_endpoints_and_errors(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    paths = document["paths"]
    single = paths["/banking/v1/issuers/{issuerId}/physicalCards/{cardId}/operations:production"][
        "post"
    ]
    batch = paths["/banking/v1/issuers/{issuerId}/physicalCards/operations:production"]["post"]
    status = paths["/banking/v1/issuers/{issuerId}/physicalCards/{cardId}/productionStatus"]["get"]
    assert "/authz/v1/oauth2/token" in paths
    for operation in (single, batch):
        assert {"202", "400", "401", "403", "409", "413", "422"} <= set(operation["responses"])
    assert {"200", "401", "403", "404"} <= set(status["responses"])
    assert (
        batch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        == "#/components/schemas/CardsOrderRequest"
    )

    schemas = document["components"]["schemas"]
    order = schemas["CardOrderRequest"]["properties"]
    assert {
        "distributionChannel",
        "consumerId",
        "cardProductId",
        "issuerRequestId",
        "services",
        "encryptedData",
        "shipment",
        "paymentApplication",
        "oldCardId",
    } <= set(order)
    assert schemas["CardsOrderRequest"]["properties"]["cards"]["maxItems"] == 1000
    assert set(schemas["ErrorBody"]["properties"]) >= {"errorCode", "error", "field"}
    assert {"operationId", "startTime", "endTime", "details", "errorCode"} <= set(
        schemas["Operation"]["properties"]
    )
    assert "dryRun" in {p["name"] for p in single["parameters"]}


def test_docs_page_is_served(http: httpx.Client) -> None:
    response = http.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


def test_no_example_or_description_carries_card_data(http: httpx.Client) -> None:
    """Numbers that could be PANs (13 to 19 digits passing the Luhn check), spaced or not."""
    text = http.get("/openapi.json").text + http.get("/docs").text
    candidates = [re.sub(r"\D", "", run) for run in re.findall(r"\d(?:[ -]?\d){12,18}", text)]

    assert [c for c in candidates if luhn_ok(c)] == []
    assert not re.search(r'(?i)"(cvv\d?|csc|pvv|track[123])"\s*:\s*"', text)


def test_openapi_describes_the_order_file_extension(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    prefix = "/banking/v1/issuers/{issuerId}/orderFiles"
    upload = document["paths"][prefix]["post"]
    assert {"202", "400", "401", "403", "413"} <= set(upload["responses"])
    assert {"text/csv", "application/x-ndjson"} <= set(upload["requestBody"]["content"])
    assert "fileName" in {p["name"] for p in upload["parameters"]}
    status = document["paths"][prefix + "/{importId}"]["get"]
    assert {"200", "403", "404"} <= set(status["responses"])
    report = document["paths"][prefix + "/{importId}/report"]["get"]
    assert {"application/x-ndjson", "text/csv"} <= set(report["responses"]["200"]["content"])
    schemas = document["components"]["schemas"]
    assert {"importId", "status", "accepted", "replayed", "refused", "progress"} <= set(
        schemas["OrderFileImport"]["properties"]
    )


def test_an_accepted_order_links_to_what_can_be_done_with_the_same_card(
    http: httpx.Client,
) -> None:
    document = http.get("/openapi.json").json()
    card = "/banking/v1/issuers/{issuerId}/physicalCards/{cardId}"
    operations = {
        op["operationId"]: (method, path)
        for path, methods in document["paths"].items()
        for method, op in methods.items()
    }
    accepted = document["paths"][f"{card}/operations:production"]["post"]["responses"]["202"]
    targets = {
        operations[link["operationId"]]: link["parameters"] for link in accepted["links"].values()
    }
    same_card = {"issuerId": "$request.path.issuerId", "cardId": "$request.path.cardId"}
    assert targets == {
        ("get", f"{card}/productionStatus"): same_card,
        ("post", f"{card}/operations:cancel"): same_card,
        ("post", f"{card}/operations:hold"): same_card,
        ("post", f"{card}/operations:release"): same_card,
        ("post", f"{card}/returnDecision"): same_card,
    }
    held = document["paths"][f"{card}/operations:hold"]["post"]["responses"]
    assert held["200"]["links"] == accepted["links"]  # and on from each answered action
    assert {"404", "409"} <= set(held)  # no order for the card; not in a state that allows it


def test_an_accepted_order_file_links_to_its_progress_and_report(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    files = "/banking/v1/issuers/{issuerId}/orderFiles"
    links = document["paths"][files]["post"]["responses"]["202"]["links"]
    by_id = {
        op["operationId"]: path
        for path, methods in document["paths"].items()
        for op in methods.values()
    }
    assert {by_id[link["operationId"]] for link in links.values()} == {
        f"{files}/{{importId}}",
        f"{files}/{{importId}}/report",
    }
    for link in links.values():
        assert link["parameters"] == {
            "issuerId": "$request.path.issuerId",
            "importId": "$response.body#/importId",  # ImportAccepted's required field
        }

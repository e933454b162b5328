"""Every class of bad input gets a 4xx with a machine-readable code and the field; never a 500."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from joserfc import jwe
from joserfc.jwk import ECKey

from issuance.api.app import create_app
from issuance.platform import Platform
from issuance.settings import Settings
from tests.factories import DEMO, IssuerClient, luhn_pan, new_card_id, order_body


@pytest.fixture
def issuer(http: httpx.Client) -> IssuerClient:
    return IssuerClient(http)


def _refused(
    response: httpx.Response, status: int, code: str, field: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["errorCode"] == code, body
    if field is not None:
        assert body["field"] == field, body
        assert field in body["error"]
    return body


def _post_raw(
    issuer: IssuerClient,
    content: bytes,
    content_type: str = "application/json",
    batch: bool = False,
) -> httpx.Response:
    card = "" if batch else f"{new_card_id()}/"
    path = f"/banking/v1/issuers/{DEMO}/physicalCards/{card}operations:production"
    return issuer.http.post(
        path, content=content, headers={**issuer.headers, "content-type": content_type}
    )


def test_malformed_json(issuer: IssuerClient) -> None:
    _refused(_post_raw(issuer, b'{"services": '), 400, "INVALID_JSON")


@pytest.mark.parametrize("depth", [1_200, 5_000])
@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_a_body_nested_deeper_than_the_stack_is_answered_and_logged(
    settings: Settings, platform: Platform, depth: int, batch: bool
) -> None:
    """A few kilobytes of `[[[…]]]`: the access log parsed and walked it after the answer (the
    sandbox logs bodies) and overflowed the stack, an unhandled error that reset the connection.
    In process, so that such an error reaches the test (a server would only log it)."""
    assert settings.body_logging
    app = create_app(settings, platform=platform)
    card = "" if batch else f"{new_card_id()}/"

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # raises what the app raises
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                f"/banking/v1/issuers/{DEMO}/physicalCards/{card}operations:production",
                content=b"[" * depth + b"]" * depth,
                headers={"content-type": "application/json"},
            )

    assert asyncio.run(post()).status_code == 401  # no token: refused, then logged


@pytest.mark.parametrize("body", [b"[1, 2]", b"null", b'"text"', b"42"])
def test_a_body_that_is_not_an_object(issuer: IssuerClient, body: bytes) -> None:
    refusal = _refused(_post_raw(issuer, body), 400, "FIELD_INVALID_FORMAT")
    assert refusal["error"] == "Input should be an object"


def test_no_body_is_a_missing_field(issuer: IssuerClient) -> None:
    refusal = _refused(_post_raw(issuer, b""), 400, "FIELD_MISSING")
    assert "field" not in refusal


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_a_body_that_is_not_sent_as_json_is_refused(
    issuer: IssuerClient, content_type: str, batch: bool
) -> None:
    body = b'{"cards": []}' if batch else b'{"services": {}}'
    response = _post_raw(issuer, body, content_type, batch=batch)
    refusal = _refused(response, 400, "UNSUPPORTED_CONTENT_TYPE", "Content-Type")
    assert "must be application/json" in refusal["error"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/vnd.issuer+json"],
)
def test_any_json_media_type_is_read(issuer: IssuerClient, content_type: str) -> None:
    body = order_body(issuer.encrypt())
    response = _post_raw(issuer, json.dumps(body).encode(), content_type)
    assert response.status_code == 202, response.text


def test_a_utf8_byte_order_mark_is_skipped(issuer: IssuerClient) -> None:
    body = json.dumps(order_body(issuer.encrypt())).encode()
    assert _post_raw(issuer, b"\xef\xbb\xbf" + body).status_code == 202


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "latin-1"])
@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_json_in_another_encoding_than_utf8_is_invalid(
    issuer: IssuerClient, encoding: str, batch: bool
) -> None:
    order = order_body(issuer.encrypt(), consumerId="Zoé")
    body = {"cards": [{"cardId": new_card_id(), **order}]} if batch else order
    text = json.dumps(body, ensure_ascii=False)
    _refused(_post_raw(issuer, text.encode(encoding), batch=batch), 400, "INVALID_JSON")


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_json_nested_deeper_than_the_parsers_go_is_invalid(
    issuer: IssuerClient, batch: bool
) -> None:
    """pydantic-core stops at 200 levels, `json.loads` at the interpreter's stack."""
    depth = 5_000
    response = _post_raw(issuer, b'{"cards": ' * depth + b"1" + b"}" * depth, batch=batch)
    _refused(response, 400, "INVALID_JSON")


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"services": None}, "FIELD_MISSING", "services"),
        ({"encryptedData": None}, "FIELD_MISSING", "encryptedData"),
        ({"services": {"issuance": 7}}, "FIELD_INVALID_VALUE", "services.issuance"),
        ({"services": {"issuance": "REISSUE"}}, "FIELD_INVALID_VALUE", "services.issuance"),
        (
            {"services": {"issuance": "CREATION", "pinMailer": "perhaps"}},
            "FIELD_INVALID_FORMAT",
            "services.pinMailer",
        ),
        ({"distributionChannel": "POST_OFFICE"}, "FIELD_INVALID_VALUE", "distributionChannel"),
        ({"consumerId": "has spaces"}, "FIELD_INVALID_FORMAT", "consumerId"),
        ({"issuerRequestId": "x" * 65}, "FIELD_INVALID_FORMAT", "issuerRequestId"),
        ({"colour": "blue"}, "FIELD_UNKNOWN", "colour"),
        ({"shipment": {"type": "BULK"}}, "FIELD_MISSING", "shipment.deliveryAddress"),
        (
            {
                "shipment": {
                    "type": "INDIVIDUAL",
                    "deliveryAddress": {
                        "line1": "x",
                        "zipCode": "1",
                        "city": "c",
                        "countryCode": "fr",
                    },
                }
            },
            "FIELD_INVALID_FORMAT",
            "shipment.deliveryAddress.countryCode",
        ),
        (
            {"cardDesign": {"customLines": ["a"] * 7}},
            "FIELD_TOO_MANY_ITEMS",
            "cardDesign.customLines",
        ),
        (
            {"trackData": {"track2": "4539910000000002=2911"}},
            "SENSITIVE_DATA_NOT_ENCRYPTED",
            "trackData",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_schema_errors_name_the_field(
    issuer: IssuerClient, change: dict[str, Any], code: str, field: str
) -> None:
    body = order_body(issuer.encrypt(), **change)  # a None value removes the field
    _refused(issuer.order(new_card_id(), body), 400, code, field)


def test_every_schema_problem_is_listed(issuer: IssuerClient) -> None:
    body = order_body(
        issuer.encrypt(), consumerId="bad id", services={"issuance": "NOPE"}, colour="red"
    )
    answer = _refused(issuer.order(new_card_id(), body), 400, "FIELD_INVALID_FORMAT")
    fields = {problem["field"] for problem in answer["problems"]}
    assert {"consumerId", "services.issuance", "colour"} <= fields


@pytest.mark.parametrize(
    ("path_card_id", "status"),
    [("has space", 400), ("x" * 49, 400), ("semi;colon", 400)],
)
def test_card_id_in_the_path_is_checked(
    issuer: IssuerClient, path_card_id: str, status: int
) -> None:
    response = issuer.order(path_card_id, order_body(issuer.encrypt()))
    _refused(response, status, "FIELD_INVALID_FORMAT", "cardId")


def test_issuer_id_must_have_ten_characters(issuer: IssuerClient) -> None:
    response = issuer.order(new_card_id(), order_body(issuer.encrypt()), issuer_id="DEMOBANK")
    _refused(response, 400, "FIELD_INVALID_FORMAT", "issuerId")


def test_other_channels_are_refused_clearly(issuer: IssuerClient) -> None:
    body = order_body(issuer.encrypt(), distributionChannel="INSTANT")
    _refused(
        issuer.order(new_card_id(), body),
        400,
        "DISTRIBUTION_CHANNEL_NOT_SUPPORTED",
        "distributionChannel",
    )


def test_thales_channel_requires_a_shipment(issuer: IssuerClient) -> None:
    body = order_body(issuer.encrypt(), shipment=None)
    _refused(issuer.order(new_card_id(), body), 400, "FIELD_MISSING", "shipment")


def test_oversized_body(issuer: IssuerClient) -> None:
    body = json.dumps(order_body(issuer.encrypt(), padding="x" * 5_000_000)).encode()
    response = _post_raw(issuer, body)
    _refused(response, 413, "PAYLOAD_TOO_LARGE")


def test_oversized_body_without_content_length(issuer: IssuerClient) -> None:
    def chunks() -> Any:
        for _ in range(80):
            yield b"x" * 65_536

    path = f"/banking/v1/issuers/{DEMO}/physicalCards/{new_card_id()}/operations:production"
    response = issuer.http.post(
        path, content=chunks(), headers={**issuer.headers, "content-type": "application/json"}
    )
    _refused(response, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    ("card", "code", "field"),
    [
        ({"pan": "4539910000000003"}, "INVALID_JWE_CONTENT", "encryptedData.pan"),
        ({"pan": "45399"}, "INVALID_JWE_CONTENT", "encryptedData.pan"),
        ({"pan": None}, "INVALID_JWE_CONTENT", "encryptedData.pan"),
        ({"exp": "2913"}, "INVALID_JWE_CONTENT", "encryptedData.exp"),
        ({"cvv2": "12a"}, "INVALID_JWE_CONTENT", "encryptedData.cvv2"),
        ({"favouriteColour": "blue"}, "INVALID_JWE_CONTENT", "encryptedData.favouriteColour"),
    ],
)
def test_decrypted_content_is_validated_without_echoing_it(
    issuer: IssuerClient, card: dict[str, Any], code: str, field: str
) -> None:
    encrypted = issuer.encrypt(**card)
    answer = _refused(issuer.order(new_card_id(), order_body(encrypted)), 400, code, field)
    if card.get("pan"):
        assert card["pan"] not in json.dumps(answer)


def test_jwe_failures_have_their_own_codes(issuer: IssuerClient) -> None:
    key = ECKey.import_key(issuer.jwks["keys"][0])
    stranger = ECKey.generate_key("P-256", parameters={"kid": "not-ours"})
    cases = {
        "INVALID_JWE": "not-a-jwe",
        "UNKNOWN_JWE_KEY": jwe.encrypt_compact(
            {"alg": "ECDH-ES", "enc": "A256GCM", "kid": "not-ours"}, b"{}", stranger
        ),
        "UNSUPPORTED_JWE_ALGORITHM": jwe.encrypt_compact(
            {"alg": "ECDH-ES", "enc": "A128GCM", "kid": key.kid}, b"{}", key
        ),
        "INVALID_JWE_CONTENT": jwe.encrypt_compact(
            {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key.kid}, b"[1]", key
        ),
    }
    for code, token in cases.items():
        _refused(issuer.order(new_card_id(), order_body(token)), 400, code, "encryptedData")


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"cardProductId": None}, "CARD_PRODUCT_REQUIRED", "cardProductId"),
        ({"cardProductId": "OTHER-GOLD"}, "CARD_PRODUCT_UNKNOWN", "cardProductId"),
        (
            {"services": {"issuance": "CREATION", "delivery": "ups-branch"}},
            "SHIPPING_METHOD_NOT_ALLOWED",
            "services.delivery",
        ),
        (
            {"services": {"issuance": "CREATION", "priority": "VIP"}},
            "PRIORITY_NOT_ALLOWED",
            "services.priority",
        ),
        (
            {"services": {"issuance": "RENEWAL", "cardCarrier": "WELCOME-LETTER"}},
            "CARD_CARRIER_NOT_ALLOWED",
            "services.cardCarrier",
        ),
        (
            {"services": {"issuance": "CREATION", "packaging": "GIFT-BOX"}},
            "PACKAGING_NOT_ALLOWED",
            "services.packaging",
        ),
        (
            {"cardDesign": {"cardImage": "CREDIT-BLACK"}},
            "CARD_DESIGN_UNKNOWN",
            "cardDesign.cardImage",
        ),
        ({"paymentApplication": None}, "PAYMENT_APPLICATION_REQUIRED", "paymentApplication"),
    ],
)
def test_configuration_errors_name_the_field(
    issuer: IssuerClient, change: dict[str, Any], code: str, field: str
) -> None:
    body = order_body(issuer.encrypt(), **change)  # a None value removes the field
    _refused(issuer.order(new_card_id(), body), 400, code, field)


def test_pan_outside_the_products_bin_ranges(issuer: IssuerClient) -> None:
    body = order_body(issuer.encrypt(pan=luhn_pan("541275")))
    _refused(issuer.order(new_card_id(), body), 400, "PAN_OUTSIDE_BIN_RANGE", "encryptedData.pan")


def test_destination_country_not_allowed(issuer: IssuerClient) -> None:
    usa = {"line1": "1 Main St", "zipCode": "10001", "city": "New York", "countryCode": "US"}
    body = order_body(
        issuer.encrypt(),
        shipment={"type": "INDIVIDUAL", "deliveryAddress": usa, "individualAddress": usa},
    )
    _refused(
        issuer.order(new_card_id(), body),
        400,
        "COUNTRY_NOT_ALLOWED",
        "shipment.deliveryAddress.countryCode",
    )


def test_unknown_card_status(issuer: IssuerClient) -> None:
    _refused(issuer.status(new_card_id()), 404, "CARD_NOT_FOUND", "cardId")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-jwt",
        "Basic ZGVtbzpkZW1v",
        "Bearer eyJhbGciOiJub25lIn0.eyJpc3N1ZXJJZCI6IkRFTU9CQU5LMDEifQ.",
    ],
)
def test_missing_or_bad_tokens_get_401(issuer: IssuerClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = issuer.http.get(
        f"/banking/v1/issuers/{DEMO}/physicalCards/{new_card_id()}/productionStatus",
        headers=headers,
    )
    assert response.status_code == 401
    assert response.json()["errorCode"] in {"UNAUTHORIZED", "TOKEN_EXPIRED"}


def test_unknown_route_and_method(issuer: IssuerClient) -> None:
    assert issuer.http.get("/banking/v1/nowhere").json()["errorCode"] == "NOT_FOUND"
    wrong_method = issuer.http.delete(
        f"/banking/v1/issuers/{DEMO}/physicalCards/{new_card_id()}/productionStatus"
    )
    assert wrong_method.status_code == 405
    assert wrong_method.json()["errorCode"] == "METHOD_NOT_ALLOWED"

"""Standard Webhooks signatures, checked by the reference verifier, and the signed POST itself.

The verifier is `standardwebhooks.Webhook` (the spec's own Python library, from PyPI), so these
tests say "an issuer using the standard library accepts our notifications", not "our signing
agrees with itself". The sender is driven through `httpx.MockTransport`: the edge, not our code.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from issuance.delivery.sender import NOTIFY_PATH, send
from issuance.delivery.signing import signature, signature_headers
from issuance.domain.parties import NotificationEndpoint
from issuance.domain.retry import Outcome

BODY = b'{"operations":[{"operationId":"op-1","sequence":1}]}'


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _headers(*keys: str, body: bytes = BODY) -> dict[str, str]:
    return signature_headers(
        keys, message_id=f"msg_{secrets.token_hex(8)}", timestamp=int(time.time()), body=body
    )


# --- signatures ---


def test_the_standard_webhooks_test_vector() -> None:
    """The example from the Standard Webhooks reference libraries, worked out independently."""
    assert (
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            body=b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_signed_headers_verify_with_the_reference_library() -> None:
    secret = new_secret()
    headers = _headers(secret)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_during_a_rotation_a_receiver_holding_either_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = _headers(old, new)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(part.startswith("v1,") for part in headers["webhook-signature"].split(" "))
    for secret in (old, new):
        assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


@pytest.mark.parametrize(
    "tampered",
    [
        BODY.replace(b"op-1", b"op-2"),
        BODY.replace(b'"sequence":1', b'"sequence":2'),
        BODY + b" ",
        b"",
    ],
)
def test_a_tampered_body_fails_verification(tampered: bytes) -> None:
    secret = new_secret()
    headers = _headers(secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)


def test_a_tampered_id_or_timestamp_fails_verification() -> None:
    secret = new_secret()
    headers = _headers(secret)
    other_id = {**headers, "webhook-id": "msg_someone_else"}
    other_time = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}
    for forged in (other_id, other_time):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(BODY, forged)


def test_a_wrong_secret_fails_verification() -> None:
    headers = _headers(new_secret())
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_without_a_secret_there_is_no_signature_header() -> None:
    headers = _headers()
    assert "webhook-signature" not in headers
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-timestamp"].isdigit()
    with pytest.raises(WebhookVerificationError, match="Missing required headers"):
        Webhook(new_secret()).verify(BODY, headers)


def test_an_unpadded_secret_the_configuration_accepts_can_sign() -> None:
    secret = new_secret().rstrip("=")
    NotificationEndpoint(endpoint_id="main", base_url="http://x", signing_secrets=(secret,))
    assert Webhook(secret).verify(BODY, _headers(secret)) == json.loads(BODY)


# --- the signed POST (sender.send through httpx.MockTransport) ---

SECRET = new_secret()
OPERATIONS: list[dict[str, Any]] = [
    {"operationId": "op-1", "cardId": "card-1", "sequence": 1, "status": "IN_PROGRESS"},
    {"operationId": "op-2", "cardId": "card-2", "sequence": 4, "status": "SUCCEEDED"},
]


def _endpoint(**changes: Any) -> NotificationEndpoint:
    values: dict[str, Any] = {
        "endpoint_id": "main",
        "base_url": "https://issuer.example/hooks/",
        "signing_secrets": (SECRET,),
        "timeout_seconds": 1.5,
    }
    return NotificationEndpoint(**{**values, **changes})


def _client(answer: httpx.Response, seen: list[httpx.Request]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_one_post_of_the_operations_to_the_d1_path_signed() -> None:
    seen: list[httpx.Request] = []
    with _client(httpx.Response(204), seen) as client:
        sent = send(client, _endpoint(), issuer_id="DEMOBANK01", operations=OPERATIONS)

    assert sent.outcome == Outcome(status_code=204)
    assert sent.latency_ms >= 0
    [request] = seen
    assert request.method == "POST"
    assert (
        str(request.url)
        == "https://issuer.example/hooks/notifications/d1/v2/issuers/DEMOBANK01/cards"
    )
    assert request.url.path == "/hooks" + NOTIFY_PATH.format(issuer_id="DEMOBANK01")
    assert json.loads(request.content) == {"operations": OPERATIONS}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-correlation-id"] == sent.message_id
    assert request.headers["webhook-id"] == sent.message_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert Webhook(SECRET).verify(request.content, dict(request.headers)) == {
        "operations": OPERATIONS
    }
    assert request.extensions["timeout"] == {
        "connect": 1.5,
        "read": 1.5,
        "write": 1.5,
        "pool": 1.5,
    }


def test_each_post_has_its_own_message_id() -> None:
    seen: list[httpx.Request] = []
    with _client(httpx.Response(200), seen) as client:
        ids = {
            send(client, _endpoint(), issuer_id="DEMOBANK01", operations=OPERATIONS).message_id
            for _ in range(3)
        }
    assert len(ids) == 3
    assert {r.headers["webhook-id"] for r in seen} == ids


def test_an_endpoint_without_secrets_posts_unsigned() -> None:
    seen: list[httpx.Request] = []
    with _client(httpx.Response(200), seen) as client:
        send(client, _endpoint(signing_secrets=()), issuer_id="DEMOBANK01", operations=[])
    [request] = seen
    assert "webhook-signature" not in request.headers
    assert json.loads(request.content) == {"operations": []}


@pytest.mark.parametrize("code", [200, 410, 429, 500, 503])
def test_the_status_code_is_the_outcome(code: int) -> None:
    with _client(httpx.Response(code), []) as client:
        sent = send(client, _endpoint(), issuer_id="DEMOBANK01", operations=OPERATIONS)
    assert sent.outcome == Outcome(status_code=code)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", timedelta(seconds=120)),
        (" 7 ", timedelta(seconds=7)),
        ("0", timedelta(0)),
        ("soon", None),
        ("", None),
        ("-5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", timedelta(0)),  # in the past: now
    ],
)
def test_retry_after_is_parsed(value: str, expected: timedelta | None) -> None:
    answer = httpx.Response(429, headers={"Retry-After": value})
    with _client(answer, []) as client:
        sent = send(client, _endpoint(), issuer_id="DEMOBANK01", operations=OPERATIONS)
    assert sent.outcome == Outcome(status_code=429, retry_after=expected)


def test_retry_after_as_an_http_date_is_the_time_left_until_then() -> None:
    date = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    answer = httpx.Response(503, headers={"Retry-After": date})
    with _client(answer, []) as client:
        sent = send(client, _endpoint(), issuer_id="DEMOBANK01", operations=OPERATIONS)
    assert sent.outcome.retry_after is not None
    # the date has whole seconds and a little time passes: 118-120 s
    assert timedelta(seconds=118) <= sent.outcome.retry_after <= timedelta(seconds=120)


def test_no_retry_after_header_means_none() -> None:
    with _client(httpx.Response(503), []) as client:
        sent = send(client, _endpoint(), issuer_id="DEMOBANK01", operations=OPERATIONS)
    assert sent.outcome.retry_after is None


@pytest.mark.parametrize(
    ("raised", "reads"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "ConnectError: "),
        (httpx.ConnectTimeout("timed out"), "Timeout: no response within "),
        (httpx.ReadTimeout("timed out"), "Timeout: no response within "),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            "RemoteProtocolError: ",
        ),
    ],
    ids=lambda value: type(value).__name__,
)
def test_a_network_failure_is_an_outcome_never_an_exception(
    raised: httpx.HTTPError, reads: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        sent = send(client, _endpoint(), issuer_id="DEMOBANK01", operations=OPERATIONS)
    assert sent.outcome.status_code is None
    assert sent.outcome.retry_after is None
    assert sent.outcome.error is not None
    assert sent.outcome.error.startswith(reads)
    assert len(sent.outcome.error) <= 255


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"\xb2", id="superscript-two"),  # latin-1 '²': str.isdigit() but not int()
        pytest.param(b"9" * 20, id="twenty-digits"),  # int, but beyond timedelta
    ],
)
def test_a_malformed_retry_after_does_not_raise(value: bytes) -> None:
    answer = httpx.Response(429, headers=[(b"retry-after", value)])
    with _client(answer, []) as client:
        sent = send(client, _endpoint(), issuer_id="DEMOBANK01", operations=OPERATIONS)
    assert sent.outcome.status_code == 429

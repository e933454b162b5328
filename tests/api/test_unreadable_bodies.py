"""Bodies no parser reads are a 400 with a code that says so, on every route that takes one.

The order routes read their bodies themselves (tests/api/test_order_errors.py); these are the
others: FastAPI's own parsing, and the token endpoint's. FastAPI answered bytes that are not
UTF-8, or nesting past the interpreter's stack, with a vague `HTTP_ERROR`, and the token endpoint
let the stack overflow through as a 500.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.factories import DEMO, ActingIssuerClient, OperatorClient, expect_refused, new_card_id

UNREADABLE = {
    "not UTF-8": b'{"reason": "\xff\xfe"}',
    "nested 5,000 deep": b"[" * 5_000 + b"]" * 5_000,
}

Post = Callable[[httpx.Client, bytes, str], httpx.Response]


def _issuer_hold(http: httpx.Client, body: bytes, content_type: str) -> httpx.Response:
    issuer = ActingIssuerClient(http)
    path = f"/banking/v1/issuers/{DEMO}/physicalCards/{new_card_id()}/operations:hold"
    return http.post(path, content=body, headers={**issuer.headers, "content-type": content_type})


def _operator_action(http: httpx.Client, body: bytes, content_type: str) -> httpx.Response:
    operator = OperatorClient(http)
    path = f"/operator/v1/issuers/{DEMO}/physicalCards/{new_card_id()}/actions/hold"
    return http.post(path, content=body, headers={**operator.headers, "content-type": content_type})


def _token(http: httpx.Client, body: bytes, content_type: str) -> httpx.Response:
    return http.post("/authz/v1/oauth2/token", content=body, headers={"content-type": content_type})


ROUTES: dict[str, Post] = {
    "issuer hold": _issuer_hold,
    "operator action": _operator_action,
    "token": _token,
}


@pytest.mark.parametrize("body", UNREADABLE.values(), ids=UNREADABLE.keys())
@pytest.mark.parametrize("post", ROUTES.values(), ids=ROUTES.keys())
def test_json_no_parser_reads_is_invalid_json(http: httpx.Client, post: Post, body: bytes) -> None:
    answer = post(http, body, "application/json")
    expect_refused(answer, 400, "INVALID_JSON")
    assert answer.json()["error"] == "the body is not valid JSON"


def test_a_form_that_cannot_be_split_names_the_body(http: httpx.Client) -> None:
    answer = _token(http, b"grant_type=client_credentials", "multipart/form-data")
    expect_refused(answer, 400, "INVALID_BODY")
    assert answer.json()["field"] == "body"
    assert answer.json()["error"] == "body: Missing boundary in multipart."

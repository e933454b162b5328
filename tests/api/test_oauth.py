"""The token endpoint: D1's JWT-bearer grant and the sandbox's client credentials."""

from __future__ import annotations

import base64
import time

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.services.configuration import load_config
from tests.conftest import Server
from tests.factories import DEMO, new_card_id

TOKEN_PATH = "/authz/v1/oauth2/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _status_with(http: httpx.Client, token: str, issuer_id: str = DEMO) -> int:
    path = f"/banking/v1/issuers/{issuer_id}/physicalCards/{new_card_id()}/productionStatus"
    return http.get(path, headers={"Authorization": f"Bearer {token}"}).status_code


def test_client_credentials_in_the_form(http: httpx.Client) -> None:
    response = http.post(
        TOKEN_PATH,
        data={
            "grant_type": "client_credentials",
            "client_id": "demobank01",
            "client_secret": "sandbox-secret-demobank01",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert response.headers["cache-control"] == "no-store"
    assert (
        _status_with(http, body["access_token"]) == 404
    )  # authenticated: the card just does not exist


def test_client_credentials_in_basic_auth_and_json(http: httpx.Client) -> None:
    basic = base64.b64encode(b"otherbnk02:sandbox-secret-otherbnk02").decode()
    response = http.post(
        TOKEN_PATH,
        json={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200
    assert _status_with(http, response.json()["access_token"], "OTHERBNK02") == 404
    assert _status_with(http, response.json()["access_token"], DEMO) == 403


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (
            {
                "grant_type": "client_credentials",
                "client_id": "demobank01",
                "client_secret": "wrong",
            },
            401,
            "INVALID_CLIENT",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
            401,
            "INVALID_CLIENT",
        ),
        ({"grant_type": "password"}, 400, "UNSUPPORTED_GRANT_TYPE"),
        ({}, 400, "UNSUPPORTED_GRANT_TYPE"),
        ({"grant_type": JWT_BEARER}, 400, "FIELD_MISSING"),
        ({"grant_type": JWT_BEARER, "assertion": "garbage"}, 401, "INVALID_GRANT"),
    ],
)
def test_bad_grants(http: httpx.Client, data: dict[str, str], status: int, code: str) -> None:
    response = http.post(TOKEN_PATH, data=data)
    assert response.status_code == status
    assert response.json()["errorCode"] == code


@pytest.fixture
def issuer_key(server: Server) -> ECKey:
    """An EC P-256 key registered for demobank01, as D1 onboarding does."""
    key = ECKey.generate_key("P-256", parameters={"kid": "demobank01-2026"})
    config = read_config(SANDBOX_CONFIG)
    demo = config.issuers[0]
    client = demo.clients[0].model_copy(update={"public_keys": (key.as_dict(private=False),)})
    changed = config.model_copy(
        update={"issuers": (demo.model_copy(update={"clients": (client,)}), *config.issuers[1:])}
    )
    load_config(changed, uow=server.platform.uow())
    return key


def _assertion(key: ECKey, **claims: object) -> str:
    now = int(time.time())
    payload = {"iss": DEMO, "sub": DEMO, "exp": now + 300, "iat": now, **claims}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, payload, key, algorithms=["ES256"])


def test_d1_jwt_bearer_grant(http: httpx.Client, issuer_key: ECKey) -> None:
    response = http.post(
        TOKEN_PATH, data={"grant_type": JWT_BEARER, "assertion": _assertion(issuer_key)}
    )
    assert response.status_code == 200, response.text
    assert _status_with(http, response.json()["access_token"]) == 404


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 10},
        {"exp": int(time.time()) + 3600},
        {"iss": "OTHERBNK02", "sub": "OTHERBNK02"},
        {"sub": "SOMEONE"},
    ],
    ids=["expired", "too-long", "another-issuer", "sub-differs"],
)
def test_d1_assertions_that_do_not_hold(
    http: httpx.Client, issuer_key: ECKey, claims: dict[str, object]
) -> None:
    response = http.post(
        TOKEN_PATH, data={"grant_type": JWT_BEARER, "assertion": _assertion(issuer_key, **claims)}
    )
    assert response.status_code == 401
    assert response.json()["errorCode"] == "INVALID_GRANT"


def test_an_assertion_signed_by_an_unregistered_key(http: httpx.Client, issuer_key: ECKey) -> None:
    assert issuer_key.kid is not None
    impostor = ECKey.generate_key("P-256", parameters={"kid": issuer_key.kid})
    response = http.post(
        TOKEN_PATH, data={"grant_type": JWT_BEARER, "assertion": _assertion(impostor)}
    )
    assert response.status_code == 401

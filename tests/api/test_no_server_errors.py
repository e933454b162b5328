"""Whatever a client sends, the answer is never a 500 (property-based, over real HTTP)."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import IssuerClient, card_data, encrypt, new_card_id, order_body

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
PATHS = [
    (),
    ("services",),
    ("services", "issuance"),
    ("services", "delivery"),
    ("services", "pinMailer"),
    ("shipment",),
    ("shipment", "type"),
    ("shipment", "deliveryAddress"),
    ("shipment", "deliveryAddress", "countryCode"),
    ("paymentApplication",),
    ("paymentApplication", "odaKeyIndex"),
    ("cardDesign",),
    ("encryptedData",),
    ("issuerRequestId",),
    ("distributionChannel",),
    ("packagingConfig",),
]


@st.composite
def mutated_bodies(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """A valid order with one part replaced, removed, or the whole body replaced."""
    path = draw(st.sampled_from(PATHS))
    if not path:
        return draw(JSON)
    body = copy.deepcopy(valid)
    parent = body
    for key in path[:-1]:
        parent = parent.setdefault(key, {})
    if draw(st.booleans()):
        parent[path[-1]] = draw(JSON)
    else:
        parent.pop(path[-1], None)
    return body


@pytest.fixture
def issuer(http: httpx.Client) -> IssuerClient:
    return IssuerClient(http)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_body_yields_a_server_error(issuer: IssuerClient, data: st.DataObject) -> None:
    valid = order_body(encrypt(card_data(), issuer.jwks))
    body = data.draw(mutated_bodies(valid))
    batch = data.draw(st.booleans())
    response = issuer.order_batch([body]) if batch else issuer.order(new_card_id(), body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["errorCode"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    card_id=st.text(max_size=60),
    correlation=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=80),
    raw=st.binary(max_size=200),
)
def test_no_path_header_or_raw_bytes_yield_a_server_error(
    issuer: IssuerClient, card_id: str, correlation: str, raw: bytes
) -> None:
    path = f"/banking/v1/issuers/{issuer.issuer_id}/physicalCards/{quote(card_id, safe='')}/operations:production"
    headers = {
        **issuer.headers,
        "content-type": "application/json",
        "x-correlation-id": correlation,
    }
    response = issuer.http.post(path, content=raw, headers=headers)
    assert response.status_code < 500, response.text

"""productionStatus is answered without FastAPI's response model: its body must still be one."""

from __future__ import annotations

import httpx

from issuance.contract.operations import Operations
from tests.factories import ActingIssuerClient, expect_ok, new_card_id, order_body


def test_status_body_is_exactly_the_documented_model(http: httpx.Client) -> None:
    """A cancelled order (end time, error) then a held one: every field is the model's, none null."""
    issuer = ActingIssuerClient(http)
    card_id = new_card_id()
    for answer in (
        issuer.order(card_id, order_body(issuer.encrypt())),
        issuer.cancel(card_id),
        issuer.order(card_id, order_body(issuer.encrypt())),
        issuer.hold(card_id),
    ):
        assert answer.status_code in (200, 202), answer.text

    body = expect_ok(issuer.status(card_id))

    first, second = body["operations"]
    assert first["status"] == "FAILED"
    assert {"endTime", "errorCode"} <= set(first)
    assert second["details"]["onHold"] == "ISSUER"
    assert (
        Operations.model_validate(body).model_dump(mode="json", by_alias=True, exclude_none=True)
        == body
    )

"""Real out-of-stock over HTTP: the second card finds the card body gone, and resumes on replenish.

Stock levels are created from the configuration the first time it is loaded only (later loads
keep the live levels), so this module loads a sandbox configuration with a single black credit
card body into its fresh database instead of the bundled one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from issuance.cli.config_file import SANDBOX_CONFIG
from issuance.domain.configuration import PlatformConfig
from issuance.platform import Platform
from issuance.services.configuration import load_config
from issuance.settings import Settings
from tests.conftest import Server
from tests.factories import (
    ActingIssuerClient,
    OperatorClient,
    expect_ok,
    journal,
    luhn_pan,
    new_card_id,
    order_body,
)

SCARCE = "BODY-CREDIT-BLACK"


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    """The platform on a fresh database whose DEMOBANK01 has one unit of BODY-CREDIT-BLACK."""
    document = yaml.safe_load(SANDBOX_CONFIG.read_text())
    demo = document["issuers"][0]
    [body] = [item for item in demo["stockItems"] if item["stockItemId"] == SCARCE]
    body["quantity"] = 1
    built = Platform.build(settings)
    load_config(PlatformConfig.model_validate(document), uow=built.uow())
    yield built
    built.close()


def _credit_order(issuer: ActingIssuerClient) -> dict[str, Any]:
    """DEMO-CREDIT with a welcome letter and a premium box: three materials, one of them scarce."""
    return order_body(
        issuer.encrypt(pan=luhn_pan("541275")),
        cardProductId="DEMO-CREDIT",
        services={
            "issuance": "CREATION",
            "delivery": "chronopost-express",
            "cardCarrier": "WELCOME-LETTER",
            "packaging": "PREMIUM-BOX",
        },
    )


def _exhaust(issuer: ActingIssuerClient, operator: OperatorClient) -> tuple[str, str]:
    """Two prepared, batched credit cards; the first starts, the second finds no body left."""
    first, second = new_card_id(), new_card_id()
    for card_id in (first, second):
        assert issuer.order(card_id, _credit_order(issuer)).status_code == 202
        expect_ok(operator.act(card_id, "prepare"))
    assert len(expect_ok(operator.run_batches())["batches"]) == 1
    return first, second


def test_the_card_that_finds_no_stock_waits_and_resumes_on_replenish(
    server: Server, http: httpx.Client
) -> None:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    first, second = _exhaust(issuer, operator)
    levels = operator.stock()
    assert levels[SCARCE] == 1

    started = expect_ok(operator.act(first, "start"))
    assert started["details"]["status"] == "CARD_PROD_ONGOING"
    after_first = operator.stock()
    assert {k: levels[k] - after_first[k] for k in levels if levels[k] != after_first[k]} == {
        SCARCE: 1,
        "LETTER-WELCOME": 1,
        "BOX-PREMIUM": 1,
    }

    stopped = expect_ok(operator.act(second, "start"))
    assert stopped["status"] == "PENDING"
    assert stopped["details"]["status"] == "CARD_PROD_EXCEPTION"
    assert stopped["errorCode"] == "OUT_OF_STOCK"
    assert SCARCE in stopped["error"]
    assert "cancellableUntil" in stopped["details"]
    assert operator.stock() == after_first, "a card that cannot start takes no material"
    waiting = expect_ok(operator.orders("CARD_PROD_EXCEPTION"))["orders"]
    assert [o["cardId"] for o in waiting] == [second]

    replenished = expect_ok(operator.replenish(SCARCE, 5))
    assert replenished == {"stockItemId": SCARCE, "quantity": 5, "resumedCardIds": [second]}
    resumed = issuer.operation(second)
    assert resumed["details"]["status"] == "CARD_PROD_READY"
    assert "errorCode" not in resumed
    assert "error" not in resumed
    batch = stopped["details"]["productionBatch"]
    assert resumed["details"]["productionBatch"] == batch  # still in its batch

    expect_ok(operator.act(second, "start"))
    assert operator.stock()[SCARCE] == 4
    assert [(e.event_type, e.status) for e in journal(server.platform.engine, second)] == [
        ("order.accepted", "CARD_PROD_REQUESTED"),
        ("order.status_changed", "DATA_PREPARED"),
        ("order.status_changed", "CARD_PROD_READY"),
        ("order.status_changed", "CARD_PROD_EXCEPTION"),
        ("order.status_changed", "CARD_PROD_READY"),
        ("order.status_changed", "CARD_PROD_ONGOING"),
    ]
    assert operator.replenish(SCARCE, 0).status_code == 400
    assert operator.stock()[SCARCE] == 4


def test_replenishing_another_material_does_not_resume_the_order(
    server: Server, http: httpx.Client
) -> None:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    first, second = _exhaust(issuer, operator)
    expect_ok(operator.act(first, "start"))
    assert expect_ok(operator.act(second, "start"))["errorCode"] == "OUT_OF_STOCK"

    unrelated = expect_ok(operator.replenish("LETTER-WELCOME", 10))  # the letter was never missing

    assert unrelated["resumedCardIds"] == []
    assert issuer.operation(second)["details"]["status"] == "CARD_PROD_EXCEPTION"
    assert operator.stock()[SCARCE] == 0

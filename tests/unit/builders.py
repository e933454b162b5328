"""Small builders for unit tests: PANs, moments, the sandbox configuration, order specs."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from issuance.domain.configuration import PlatformConfig
from issuance.domain.programs import IssuerConfig, ShipmentType
from issuance.domain.statuses import ProductionStatus
from issuance.domain.validation import OrderSpec

DEMO = "DEMOBANK01"
JWE_KID = "platform-jwe-1"  # kid of the `jwe_key` fixture
TOKEN_KID = "token-1"  # kid of the `token_key` fixture
ISSUER_KID = "issuer-sig-1"  # kid of the `issuer_key` fixture

_S = ProductionStatus

LEGAL_MOVES = {
    # Written out by hand from the D1 lifecycle, so that a change to the table shows up in tests.
    (_S.CARD_PROD_REQUESTED, _S.DATA_PREPARED),
    (_S.CARD_PROD_REQUESTED, _S.DATA_EXCEPTION),
    (_S.CARD_PROD_REQUESTED, _S.CARD_PROD_CANCELED),
    (_S.DATA_PREPARED, _S.CARD_PROD_READY),
    (_S.DATA_PREPARED, _S.DATA_EXCEPTION),
    (_S.DATA_PREPARED, _S.CARD_PROD_CANCELED),
    (_S.CARD_PROD_READY, _S.CARD_PROD_ONGOING),
    (_S.CARD_PROD_READY, _S.CARD_PROD_CANCELED),
    (_S.CARD_PROD_ONGOING, _S.CARD_PROD_DONE),
    (_S.CARD_PROD_DONE, _S.CARD_SHIPPED),
}
ILLEGAL_MOVES = sorted(set(itertools.product(_S, _S)) - LEGAL_MOVES)


def luhn_check_digit(body: str) -> str:
    """The digit that makes `body + digit` pass the mod-10 check (computed independently)."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:  # these positions are doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def pan_in(prefix: str, *, length: int = 16, fill: str = "1") -> str:
    """A Luhn-valid PAN of `length` digits starting with `prefix`."""
    body = prefix + fill * (length - len(prefix) - 1)
    return body + luhn_check_digit(body)


def at(hour: int = 9, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A fixed UTC moment on 17 January 2025."""
    return datetime(2025, 1, 17, hour, minute, second, micro, tzinfo=UTC)


@cache
def _sandbox_text() -> str:
    return files("issuance.config").joinpath("sandbox.yaml").read_text()


def sandbox_document() -> dict[str, Any]:
    """A fresh, mutable copy of the bundled sandbox YAML document."""
    document = yaml.safe_load(_sandbox_text())
    assert isinstance(document, dict)
    return copy.deepcopy(document)


def sandbox_config() -> PlatformConfig:
    return PlatformConfig.model_validate(sandbox_document())


def demo_issuer() -> IssuerConfig:
    issuer = sandbox_config().issuer(DEMO)
    assert issuer is not None
    return issuer


DEBIT_PAN = pan_in("45399100")  # DEMO-DEBIT: 45399100..45399199, EMV-DUAL (chip, graphical)
PREPAID_PAN = pan_in("45399200")  # DEMO-PREPAID: 45399200..45399299, MAGSTRIPE-ONLY
CREDIT_PAN = pan_in("541275")  # DEMO-CREDIT: 541275, program DEMO-MC


def order_spec(**overrides: Any) -> OrderSpec:
    """A DEMO-DEBIT order DEMOBANK01's configuration accepts as is; override any field."""
    fields: dict[str, Any] = {
        "card_product_id": "DEMO-DEBIT",
        "issuance": "CREATION",
        "priority": None,
        "delivery": "laposte-lettre",
        "card_carrier": "WELCOME-LETTER",
        "carrier_language": "fr",
        "packaging": "STANDARD-ENVELOPE",
        "inserts": ("FLYER-WELCOME",),
        "shipment_type": ShipmentType.INDIVIDUAL,
        "delivery_country": "FR",
        "has_individual_address": True,
        "has_bulk_container": False,
        "card_image": None,
        "has_payment_application": True,
        "pan": DEBIT_PAN,
        "cardholder_named": True,
    }
    unknown = set(overrides) - set(fields)
    assert not unknown, f"not OrderSpec fields: {unknown}"
    fields.update(overrides)
    return OrderSpec(**fields)

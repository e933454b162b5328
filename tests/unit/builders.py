"""Small builders for unit tests: PANs, moments, the sandbox configuration, order specs, and
orders brought to any state along a legal path found in the transition tables."""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any, TypeVar

import yaml

from issuance.domain.configuration import PlatformConfig
from issuance.domain.orders import Order, Shipment
from issuance.domain.programs import IssuerConfig, ShipmentType
from issuance.domain.statuses import (
    SHIPMENT_TRANSITIONS,
    TRANSITIONS,
    Hold,
    ProductionStatus,
    ShipmentStatus,
)
from issuance.domain.validation import OrderSpec

DEMO = "DEMOBANK01"
JWE_KID = "platform-jwe-1"  # kid of the `jwe_key` fixture
TOKEN_KID = "token-1"  # kid of the `token_key` fixture
ISSUER_KID = "issuer-sig-1"  # kid of the `issuer_key` fixture


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


# --- orders -----------------------------------------------------------------------------------

Node = TypeVar("Node", bound=Hashable)

SHIPMENT = Shipment(
    carrier="laposte-lettre",
    tracking_number="1A00000000001",
    tracking_url="https://tracking.example/1A00000000001",
)
"""The shipment every order built here leaves with (status IN_TRANSIT, no message)."""

SHIPMENT_MOVES: dict[ShipmentStatus, frozenset[ShipmentStatus]] = {
    current: targets for current, targets in SHIPMENT_TRANSITIONS.items() if current is not None
}
"""`SHIPMENT_TRANSITIONS` without its "not shipped yet" row: the moves `update_shipment` makes."""


def shortest_path(table: Mapping[Node, Iterable[Node]], start: Node, goal: Node) -> list[Node]:
    """The steps after `start` of a shortest way to `goal` through `table`, found breadth-first.

    Targets are tried in name order, so every run takes the same path. An unreachable goal is a
    bug in the table, not in the test: it raises.
    """
    came_from: dict[Node, Node] = {}
    frontier = deque([start])
    while frontier:
        node = frontier.popleft()
        if node == goal:
            path = []
            while node != start:
                path.append(node)
                node = came_from[node]
            return path[::-1]
        for target in sorted(table[node], key=str):
            if target != start and target not in came_from:
                came_from[target] = node
                frontier.append(target)
    raise ValueError(f"{goal} cannot be reached from {start}")


def accepted_order(**overrides: Any) -> Order:
    """A freshly accepted order (`Order.accept` keyword arguments may be overridden)."""
    arguments: dict[str, Any] = {
        "operation_id": "op-1",
        "issuer_id": DEMO,
        "card_id": "card-1",
        "at": at(9),
    }
    arguments.update(overrides)
    return Order.accept(**arguments)


def order_at(
    status: ProductionStatus,
    *,
    hold: Hold = Hold.NONE,
    shipment_status: ShipmentStatus | None = None,
    **accept: Any,
) -> Order:
    """An accepted order taken to `status` by the shortest legal path of `TRANSITIONS`.

    Then, if asked, held by `hold`, and (once shipped, with `SHIPMENT`) its shipment taken to
    `shipment_status` by the shortest legal path of the shipment table. Every step is a real
    call on the order, between 09:01 and 10:59, so a test acting later sees a coherent history.
    """
    order = accepted_order(**accept)
    steps = shortest_path(TRANSITIONS, ProductionStatus.CARD_PROD_REQUESTED, status)
    for minute, step in enumerate(steps, start=1):
        shipment = SHIPMENT if step is ProductionStatus.CARD_SHIPPED else None
        order.move_to(step, at=at(9, minute), shipment=shipment)
    if hold is not Hold.NONE:
        order.put_on_hold(hold, at=at(10), reason="held by the test")
    if shipment_status is not None:
        reports = shortest_path(SHIPMENT_MOVES, ShipmentStatus.IN_TRANSIT, shipment_status)
        for minute, report in enumerate(reports, start=1):
            order.update_shipment(report, at=at(10, minute))
    return order


def state_of(order: Order) -> dict[str, Any]:
    """Every field of `order`, events included, deep-copied: equal before and after a refused
    change exactly when the refusal changed nothing."""
    return {f.name: copy.deepcopy(getattr(order, f.name)) for f in fields(order)}

"""Order card (`operations:production`) and order cards (batch) request and response bodies."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from issuance.contract.common import CardId, Identifier, OperationId, Text, WireModel

ISSUER_REQUEST_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_CARDS_PER_BATCH = 1000
MAX_JWE_LENGTH = 8192  # characters; comfortably above a full card's fields after encryption


class DistributionChannel(StrEnum):
    THALES = "THALES"  # made and shipped by a personalization centre (central issuance)
    INSTANT = "INSTANT"  # printed in a branch (not served by this platform)
    CENTRAL = "CENTRAL"  # printed on the issuer's or a partner's premises (not served)


class Issuance(StrEnum):
    CREATION = "CREATION"
    RENEWAL = "RENEWAL"
    REPLACEMENT = "REPLACEMENT"


class ShipmentType(StrEnum):
    INDIVIDUAL = "INDIVIDUAL"
    BULK = "BULK"


NO_SHIPMENT = "NO_SHIPMENT"
NO_CARRIER = "NO_CARRIER"
NO_PACK = "NO_PACK"

KeyIndex = (
    Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
    | Annotated[int, Field(ge=0)]
)


class Services(WireModel):
    """What to make and how to send it; the ids are those configured for the issuer."""

    issuance: Issuance
    priority: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9_]{1,32}$")] | None = None
    delivery: Identifier = NO_SHIPMENT
    card_carrier: Identifier = NO_CARRIER
    packaging: Identifier = NO_PACK
    pin_mailer: bool = False
    alpha_card: bool = False


class Address(WireModel):
    title: Annotated[str, StringConstraints(max_length=32)] | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    company_name: Text | None = None
    line1: Text
    line2: Text | None = None
    line3: Text | None = None
    zip_code: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    city: Text
    state: Annotated[str, StringConstraints(max_length=64)] | None = None
    country_code: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class Shipment(WireModel):
    """INDIVIDUAL to the cardholder, or BULK in containers (`groupId` in `orderId`)."""

    type: ShipmentType = ShipmentType.INDIVIDUAL
    delivery_address: Address
    individual_address: Address | None = None
    group_id: Identifier | None = None
    order_id: Identifier | None = None


class CardDesign(WireModel):
    card_image: Identifier | None = None
    images: list[Identifier] = Field(default_factory=list, max_length=10)
    custom_lines: list[Text] = Field(default_factory=list, max_length=6)
    member_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class CardCarrierConfig(WireModel):
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] | None = None
    images: list[Identifier] = Field(default_factory=list, max_length=10)
    custom_lines: list[Text] = Field(default_factory=list, max_length=10)


class PackagingConfig(WireModel):
    inserts: list[Identifier] = Field(default_factory=list, max_length=10)


class PaymentApplication(WireModel):
    """EMV and key selection; which fields are needed depends on the personalization profile."""

    config: Identifier | None = None
    oda_key_index: KeyIndex | None = None
    derivation_key_index: KeyIndex | None = None
    cv_key_index: KeyIndex | None = None
    pv_key_index: KeyIndex | None = None


class CardOrderFields(WireModel):
    """The fields of one card order, shared by the single and the batch request."""

    distribution_channel: DistributionChannel = DistributionChannel.THALES
    consumer_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
    card_product_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,48}$")] | None = (
        None
    )
    issuer_request_id: (
        Annotated[str, StringConstraints(pattern=ISSUER_REQUEST_ID_PATTERN)] | None
    ) = None
    services: Services
    encrypted_data: Annotated[str, StringConstraints(min_length=1, max_length=MAX_JWE_LENGTH)]
    card_design: CardDesign | None = None
    payment_application: PaymentApplication | None = None
    shipment: Shipment | None = None
    card_carrier_config: CardCarrierConfig | None = None
    packaging_config: PackagingConfig | None = None
    state: Annotated[str, StringConstraints(pattern=r"^[A-Z_]{1,32}$")] | None = None  # deprecated
    old_card_id: CardId | None = None  # deprecated: the card this one replaces

    @field_validator("encrypted_data", mode="before")
    @classmethod
    def _not_in_clear(cls, value: object) -> object:
        """An object or a number here is card data sent in clear: refused with its own code."""
        if value is not None and not isinstance(value, str):
            raise PydanticCustomError(
                "sensitive_data_not_encrypted",
                "must be a compact JWE string: card data is never accepted in clear",
            )
        return value


class CardOrderRequest(CardOrderFields):
    """Body of `POST /issuers/{issuerId}/physicalCards/{cardId}/operations:production`."""


class CardItem(CardOrderFields):
    """One card of a batch; it carries its own `cardId`."""

    card_id: CardId


class CardsOrderRequest(WireModel):
    """Body of the batch order: 1 to 1000 cards."""

    cards: Annotated[list[CardItem], Field(min_length=1, max_length=MAX_CARDS_PER_BATCH)]


class OperationAccepted(WireModel):
    """`202`: the order was accepted (or, with `Idempotent-Replayed: true`, had been)."""

    operation_id: OperationId


class CardResult(WireModel):
    """One line of the batch response: the operation, or why this card was refused."""

    card_id: str
    operation_id: OperationId | None = None
    replayed: bool | None = None
    error_code: str | None = None
    error: str | None = None
    field: str | None = None


class CardsOrderResponse(WireModel):
    cards: list[CardResult]

"""Validation of an order against the issuer's program configuration.

Returns every problem at once (a dry run shows them all), each with a stable code and the path of
the request field it concerns. The rules follow D1's card-order pages: a configured card product;
a PAN inside its BIN ranges; services (shipping method, carrier, packaging, priority) that the
product's program allows; a destination country the program allows; the addresses each shipment
type needs; the payment application a chip profile needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from issuance.domain.errors import Problem
from issuance.domain.programs import (
    CardProduct,
    IssuerConfig,
    Program,
    ShipmentType,
)

NO_SHIPMENT = "NO_SHIPMENT"
NO_CARRIER = "NO_CARRIER"
NO_PACK = "NO_PACK"


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """What validation needs to know about one card order (no wire shapes, no secrets kept)."""

    card_product_id: str | None
    issuance: str
    priority: str | None
    delivery: str
    card_carrier: str
    carrier_language: str | None
    packaging: str
    inserts: tuple[str, ...]
    shipment_type: ShipmentType | None
    delivery_country: str | None
    has_individual_address: bool
    has_bulk_container: bool
    card_image: str | None
    has_payment_application: bool
    pan: str
    cardholder_named: bool


def validate_order(spec: OrderSpec, issuer: IssuerConfig) -> list[Problem]:
    """Every way `spec` breaks `issuer`'s configuration; empty when the order can be made."""
    product = issuer.card_product(spec.card_product_id)
    if spec.card_product_id is None:
        return [Problem("CARD_PRODUCT_REQUIRED", "cardProductId", "cardProductId is required")]
    if product is None:
        return [
            Problem(
                "CARD_PRODUCT_UNKNOWN",
                "cardProductId",
                f"card product {spec.card_product_id!r} is not configured for this issuer",
            )
        ]
    program = issuer.program(product.program_id)
    return [
        *_product_problems(spec, product, issuer),
        *_service_problems(spec, program, issuer),
        *_shipment_problems(spec, program, issuer),
    ]


def _product_problems(
    spec: OrderSpec, product: CardProduct, issuer: IssuerConfig
) -> Iterator[Problem]:
    if not any(r.contains(spec.pan) for r in product.bin_ranges):
        yield Problem(
            "PAN_OUTSIDE_BIN_RANGE",
            "encryptedData.pan",
            f"the PAN is outside the BIN ranges of card product {product.card_product_id!r}",
        )
    if product.variant(spec.card_image) is None:
        yield Problem(
            "CARD_DESIGN_UNKNOWN",
            "cardDesign.cardImage",
            f"{spec.card_image!r} is not a variant of card product {product.card_product_id!r}",
        )
    profile = issuer.profile(product.personalization_profile_id)
    if profile.chip and not spec.has_payment_application:
        yield Problem(
            "PAYMENT_APPLICATION_REQUIRED",
            "paymentApplication",
            "this card product has a chip: paymentApplication (config, odaKeyIndex, derivationKeyIndex) is required",
        )
    if profile.graphical and not spec.cardholder_named:
        yield Problem(
            "CARDHOLDER_NAME_REQUIRED",
            "encryptedData.name",
            "the card is printed with a name: give encryptedData.name",
        )


def _service_problems(spec: OrderSpec, program: Program, issuer: IssuerConfig) -> Iterator[Problem]:
    if spec.priority is not None and spec.priority not in program.priorities:
        yield Problem(
            "PRIORITY_NOT_ALLOWED",
            "services.priority",
            f"priority {spec.priority!r} is not one of {', '.join(program.priorities)}",
        )
    if spec.delivery != NO_SHIPMENT and spec.delivery not in program.shipping_method_ids:
        yield Problem(
            "SHIPPING_METHOD_NOT_ALLOWED",
            "services.delivery",
            f"shipping method {spec.delivery!r} is not configured for program {program.program_id!r}",
        )
    if spec.card_carrier != NO_CARRIER:
        yield from _carrier_problems(spec, program, issuer)
    if spec.packaging != NO_PACK and spec.packaging not in program.packaging_ids:
        yield Problem(
            "PACKAGING_NOT_ALLOWED",
            "services.packaging",
            f"packaging {spec.packaging!r} is not configured for program {program.program_id!r}",
        )
    packaging = next(
        (p for p in issuer.packaging_options if p.packaging_id == spec.packaging), None
    )
    allowed_inserts = packaging.allowed_inserts if packaging else ()
    for index, insert in enumerate(spec.inserts):
        if insert not in allowed_inserts:
            yield Problem(
                "INSERT_NOT_ALLOWED",
                f"packagingConfig.inserts[{index}]",
                f"insert {insert!r} is not allowed with packaging {spec.packaging!r}",
            )


def _carrier_problems(spec: OrderSpec, program: Program, issuer: IssuerConfig) -> Iterator[Problem]:
    template = next(
        (c for c in issuer.carrier_templates if c.carrier_id == spec.card_carrier), None
    )
    if template is None or spec.card_carrier not in program.carrier_ids:
        yield Problem(
            "CARD_CARRIER_NOT_ALLOWED",
            "services.cardCarrier",
            f"card carrier {spec.card_carrier!r} is not configured for program {program.program_id!r}",
        )
        return
    if spec.issuance not in template.issuance_types:
        yield Problem(
            "CARD_CARRIER_NOT_ALLOWED",
            "services.cardCarrier",
            f"card carrier {spec.card_carrier!r} is not used for {spec.issuance} orders",
        )
    if spec.carrier_language is not None and spec.carrier_language not in template.languages:
        yield Problem(
            "CARRIER_LANGUAGE_NOT_SUPPORTED",
            "cardCarrierConfig.language",
            f"card carrier {spec.card_carrier!r} has no {spec.carrier_language!r} version",
        )


def _shipment_problems(
    spec: OrderSpec, program: Program, issuer: IssuerConfig
) -> Iterator[Problem]:
    if spec.delivery == NO_SHIPMENT:
        return
    if spec.shipment_type is None or spec.delivery_country is None:
        yield Problem(
            "SHIPMENT_REQUIRED",
            "shipment",
            "a shipment with a deliveryAddress is required when services.delivery is set",
        )
        return
    method = next((m for m in issuer.shipping_methods if m.method_id == spec.delivery), None)
    if method is not None and spec.shipment_type not in method.shipment_types:
        yield Problem(
            "SHIPMENT_TYPE_NOT_SUPPORTED",
            "shipment.type",
            f"shipping method {spec.delivery!r} does not carry {spec.shipment_type.value} shipments",
        )
    if spec.delivery_country not in program.allowed_countries:
        yield Problem(
            "COUNTRY_NOT_ALLOWED",
            "shipment.deliveryAddress.countryCode",
            f"cards of program {program.program_id!r} cannot be shipped to {spec.delivery_country!r}",
        )
    if spec.shipment_type is ShipmentType.INDIVIDUAL and not spec.has_individual_address:
        yield Problem(
            "INDIVIDUAL_ADDRESS_REQUIRED",
            "shipment.individualAddress",
            "an INDIVIDUAL shipment needs the cardholder's individualAddress",
        )
    if spec.shipment_type is ShipmentType.BULK and not spec.has_bulk_container:
        yield Problem(
            "BULK_CONTAINER_REQUIRED",
            "shipment.groupId",
            "a BULK shipment needs a groupId (first-level container)",
        )


def materials_for(spec: OrderSpec, issuer: IssuerConfig) -> tuple[str, ...]:
    """The stock items one card of this (valid) order consumes: body, carrier, packaging, inserts."""
    product = issuer.card_product(spec.card_product_id)
    variant = product.variant(spec.card_image) if product else None
    carrier = next((c for c in issuer.carrier_templates if c.carrier_id == spec.card_carrier), None)
    packaging = next(
        (p for p in issuer.packaging_options if p.packaging_id == spec.packaging), None
    )
    items = [
        variant.stock_item_id if variant else None,
        carrier.stock_item_id if carrier else None,
        packaging.stock_item_id if packaging else None,
        *spec.inserts,
    ]
    return tuple(item for item in items if item is not None)

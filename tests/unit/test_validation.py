"""An order against DEMOBANK01's sandbox programs: every problem, its stable code and field path."""

from __future__ import annotations

from typing import Any

import pytest

from issuance.domain.errors import Problem
from issuance.domain.programs import IssuerConfig, ShipmentType
from issuance.domain.validation import NO_CARRIER, NO_PACK, NO_SHIPMENT, validate_order
from tests.unit.builders import CREDIT_PAN, PREPAID_PAN, demo_issuer, order_spec, pan_in

# DEMOBANK01, in short:
#   DEMO-DEBIT   program DEMO-VISA, BIN 45399100-45399199, EMV-DUAL (chip + graphical)
#   DEMO-PREPAID program DEMO-VISA, BIN 45399200-45399299, MAGSTRIPE-ONLY (graphical)
#   DEMO-CREDIT  program DEMO-MC,   BIN 541275, priorities incl. VIP, only chronopost-express,
#                only PREMIUM-BOX, countries FR and BE


@pytest.fixture(scope="module")
def issuer() -> IssuerConfig:
    return demo_issuer()


def problems(issuer: IssuerConfig, **overrides: Any) -> list[Problem]:
    return validate_order(order_spec(**overrides), issuer)


def codes_and_fields(found: list[Problem]) -> list[tuple[str, str | None]]:
    return [(p.code, p.field) for p in found]


def only(issuer: IssuerConfig, **overrides: Any) -> Problem:
    [problem] = problems(issuer, **overrides)
    return problem


# Orders that are fine


def test_the_baseline_order_has_no_problem(issuer: IssuerConfig) -> None:
    assert problems(issuer) == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"card_image": "DEBIT-GREEN"},
        {"priority": "URGENT"},
        {"carrier_language": None},
        {"card_carrier": NO_CARRIER, "carrier_language": "de"},
        {"packaging": NO_PACK, "inserts": ()},
        {"packaging": "PREMIUM-BOX", "inserts": ("TERMS-V3",)},
        {"delivery": NO_SHIPMENT, "shipment_type": None, "delivery_country": None},
        {
            "delivery": "chronopost-express",
            "shipment_type": ShipmentType.BULK,
            "has_bulk_container": True,
            "has_individual_address": False,
            "delivery_country": "BE",
        },
        {"issuance": "RENEWAL", "card_carrier": "RENEWAL-LETTER", "carrier_language": "en"},
        {"card_product_id": "DEMO-PREPAID", "pan": PREPAID_PAN, "has_payment_application": False},
        {
            "card_product_id": "DEMO-CREDIT",
            "pan": CREDIT_PAN,
            "priority": "VIP",
            "delivery": "chronopost-express",
            "packaging": "PREMIUM-BOX",
            "inserts": (),
        },
        {"pan": pan_in("45399199", length=19)},
    ],
    ids=[
        "second-variant",
        "allowed-priority",
        "no-language",
        "no-carrier",
        "no-packaging",
        "premium-box",
        "no-shipment",
        "bulk",
        "renewal-letter",
        "magstripe-product",
        "credit-with-vip",
        "19-digit-pan-at-range-top",
    ],
)
def test_an_order_the_program_allows_has_no_problem(issuer: IssuerConfig, overrides: Any) -> None:
    assert problems(issuer, **overrides) == []


# The card product


def test_a_missing_card_product_is_required_and_nothing_else_is_checked(
    issuer: IssuerConfig,
) -> None:
    found = problems(issuer, card_product_id=None, pan="1", cardholder_named=False)

    assert codes_and_fields(found) == [("CARD_PRODUCT_REQUIRED", "cardProductId")]


@pytest.mark.parametrize("product", ["DEMO-AMEX", "OTHER-CLASSIC", "demo-debit", ""])
def test_an_unconfigured_card_product_is_unknown(issuer: IssuerConfig, product: str) -> None:
    problem = only(issuer, card_product_id=product, pan="1")

    assert (problem.code, problem.field) == ("CARD_PRODUCT_UNKNOWN", "cardProductId")
    assert repr(product) in problem.message


@pytest.mark.parametrize(
    "pan",
    [PREPAID_PAN, CREDIT_PAN, pan_in("45399099"), pan_in("45399200"), pan_in("4", length=13)],
)
def test_a_pan_outside_the_product_bin_ranges_is_refused(issuer: IssuerConfig, pan: str) -> None:
    problem = only(issuer, pan=pan)

    assert (problem.code, problem.field) == ("PAN_OUTSIDE_BIN_RANGE", "encryptedData.pan")
    assert pan not in problem.message
    assert "DEMO-DEBIT" in problem.message


@pytest.mark.parametrize("image", ["CREDIT-BLACK", "DEBIT-RED", "debit-blue"])
def test_a_card_image_that_is_not_a_variant_is_unknown(issuer: IssuerConfig, image: str) -> None:
    problem = only(issuer, card_image=image)

    assert (problem.code, problem.field) == ("CARD_DESIGN_UNKNOWN", "cardDesign.cardImage")


def test_a_chip_product_needs_a_payment_application(issuer: IssuerConfig) -> None:
    problem = only(issuer, has_payment_application=False)

    assert (problem.code, problem.field) == ("PAYMENT_APPLICATION_REQUIRED", "paymentApplication")


def test_a_printed_card_needs_the_cardholder_name(issuer: IssuerConfig) -> None:
    problem = only(issuer, cardholder_named=False)

    assert (problem.code, problem.field) == ("CARDHOLDER_NAME_REQUIRED", "encryptedData.name")


# Services


@pytest.mark.parametrize(
    ("overrides", "priority"),
    [
        ({}, "VIP"),  # VIP is only configured for DEMO-MC
        ({}, "urgent"),
        (
            {
                "card_product_id": "DEMO-CREDIT",
                "pan": CREDIT_PAN,
                "delivery": "chronopost-express",
                "packaging": "PREMIUM-BOX",
                "inserts": (),
            },
            "EXPRESS",
        ),
    ],
)
def test_a_priority_the_program_lacks_is_not_allowed(
    issuer: IssuerConfig, overrides: dict[str, Any], priority: str
) -> None:
    problem = only(issuer, priority=priority, **overrides)

    assert (problem.code, problem.field) == ("PRIORITY_NOT_ALLOWED", "services.priority")


@pytest.mark.parametrize(
    ("overrides", "delivery"),
    [
        ({}, "fedex"),
        ({}, "usps-first-class"),  # another issuer's method
        (
            {
                "card_product_id": "DEMO-CREDIT",
                "pan": CREDIT_PAN,
                "packaging": "PREMIUM-BOX",
                "inserts": (),
            },
            "laposte-lettre",
        ),  # DEMOBANK01's, but not DEMO-MC's
    ],
)
def test_a_shipping_method_the_program_lacks_is_not_allowed(
    issuer: IssuerConfig, overrides: dict[str, Any], delivery: str
) -> None:
    problem = only(issuer, delivery=delivery, **overrides)

    assert (problem.code, problem.field) == ("SHIPPING_METHOD_NOT_ALLOWED", "services.delivery")


@pytest.mark.parametrize(
    ("overrides", "carrier"),
    [
        ({}, "POSTCARD"),
        ({}, "US-CARRIER"),  # another issuer's template
        ({"issuance": "CREATION"}, "RENEWAL-LETTER"),  # a renewal letter on a new card
        ({"issuance": "RENEWAL"}, "WELCOME-LETTER"),
    ],
)
def test_a_card_carrier_the_order_cannot_use_is_not_allowed(
    issuer: IssuerConfig, overrides: dict[str, Any], carrier: str
) -> None:
    problem = only(issuer, card_carrier=carrier, **overrides)

    assert (problem.code, problem.field) == ("CARD_CARRIER_NOT_ALLOWED", "services.cardCarrier")


@pytest.mark.parametrize("language", ["de", "es", "FR"])
def test_a_carrier_language_the_template_lacks_is_not_supported(
    issuer: IssuerConfig, language: str
) -> None:
    problem = only(issuer, carrier_language=language)

    assert (problem.code, problem.field) == (
        "CARRIER_LANGUAGE_NOT_SUPPORTED",
        "cardCarrierConfig.language",
    )


def test_an_unknown_carrier_is_not_also_checked_for_language(issuer: IssuerConfig) -> None:
    found = problems(issuer, card_carrier="POSTCARD", carrier_language="de")

    assert [p.code for p in found] == ["CARD_CARRIER_NOT_ALLOWED"]


@pytest.mark.parametrize(
    ("overrides", "packaging"),
    [
        ({"inserts": ()}, "SHOEBOX"),
        ({"inserts": ()}, "US-ENVELOPE"),
        (
            {
                "card_product_id": "DEMO-CREDIT",
                "pan": CREDIT_PAN,
                "delivery": "chronopost-express",
                "inserts": (),
            },
            "STANDARD-ENVELOPE",
        ),  # DEMOBANK01's, but not DEMO-MC's
    ],
)
def test_a_packaging_the_program_lacks_is_not_allowed(
    issuer: IssuerConfig, overrides: dict[str, Any], packaging: str
) -> None:
    problem = only(issuer, packaging=packaging, **overrides)

    assert (problem.code, problem.field) == ("PACKAGING_NOT_ALLOWED", "services.packaging")


@pytest.mark.parametrize(
    ("packaging", "inserts", "fields"),
    [
        ("PREMIUM-BOX", ("FLYER-WELCOME",), ["packagingConfig.inserts[0]"]),
        ("PREMIUM-BOX", ("TERMS-V3", "FLYER-WELCOME"), ["packagingConfig.inserts[1]"]),
        (
            "STANDARD-ENVELOPE",
            ("BODY-DEBIT-BLUE", "TERMS-V3", "X"),
            ["packagingConfig.inserts[0]", "packagingConfig.inserts[2]"],
        ),
        (NO_PACK, ("TERMS-V3",), ["packagingConfig.inserts[0]"]),
    ],
)
def test_each_insert_the_packaging_does_not_take_is_reported(
    issuer: IssuerConfig, packaging: str, inserts: tuple[str, ...], fields: list[str]
) -> None:
    found = problems(issuer, packaging=packaging, inserts=inserts)

    assert codes_and_fields(found) == [("INSERT_NOT_ALLOWED", f) for f in fields]


# Shipment


@pytest.mark.parametrize(
    "overrides",
    [
        {"shipment_type": None},
        {"delivery_country": None},
        {"shipment_type": None, "delivery_country": None},
    ],
)
def test_a_delivery_without_shipment_needs_one(
    issuer: IssuerConfig, overrides: dict[str, Any]
) -> None:
    problem = only(issuer, **overrides)

    assert (problem.code, problem.field) == ("SHIPMENT_REQUIRED", "shipment")


def test_a_bulk_shipment_by_an_individual_only_method_is_not_supported(
    issuer: IssuerConfig,
) -> None:
    problem = only(
        issuer,
        shipment_type=ShipmentType.BULK,
        has_bulk_container=True,
        has_individual_address=False,
    )

    assert (problem.code, problem.field) == ("SHIPMENT_TYPE_NOT_SUPPORTED", "shipment.type")


def test_an_individual_shipment_by_a_bulk_only_method_is_not_supported(
    issuer: IssuerConfig,
) -> None:
    problem = only(issuer, delivery="dhl-branch")

    assert (problem.code, problem.field) == ("SHIPMENT_TYPE_NOT_SUPPORTED", "shipment.type")


@pytest.mark.parametrize(
    ("overrides", "country"),
    [
        ({}, "US"),
        ({}, "GB"),
        (
            {
                "card_product_id": "DEMO-CREDIT",
                "pan": CREDIT_PAN,
                "delivery": "chronopost-express",
                "packaging": "PREMIUM-BOX",
                "inserts": (),
            },
            "DE",
        ),  # DEMO-VISA's, not DEMO-MC's
    ],
)
def test_a_country_the_program_does_not_ship_to_is_not_allowed(
    issuer: IssuerConfig, overrides: dict[str, Any], country: str
) -> None:
    problem = only(issuer, delivery_country=country, **overrides)

    assert (problem.code, problem.field) == (
        "COUNTRY_NOT_ALLOWED",
        "shipment.deliveryAddress.countryCode",
    )


def test_an_individual_shipment_needs_the_individual_address(issuer: IssuerConfig) -> None:
    problem = only(issuer, has_individual_address=False)

    assert (problem.code, problem.field) == (
        "INDIVIDUAL_ADDRESS_REQUIRED",
        "shipment.individualAddress",
    )


def test_a_bulk_shipment_needs_a_container(issuer: IssuerConfig) -> None:
    problem = only(
        issuer, delivery="dhl-branch", shipment_type=ShipmentType.BULK, has_individual_address=False
    )

    assert (problem.code, problem.field) == ("BULK_CONTAINER_REQUIRED", "shipment.groupId")


def test_no_shipment_skips_every_shipment_rule(issuer: IssuerConfig) -> None:
    found = problems(
        issuer,
        delivery=NO_SHIPMENT,
        shipment_type=ShipmentType.BULK,
        delivery_country="US",
        has_individual_address=False,
        has_bulk_container=False,
    )

    assert found == []


# All at once


def test_every_problem_is_reported_together_in_a_stable_order(issuer: IssuerConfig) -> None:
    found = problems(
        issuer,
        pan=PREPAID_PAN,
        card_image="GOLD",
        has_payment_application=False,
        cardholder_named=False,
        priority="VIP",
        delivery="dhl-branch",
        card_carrier="RENEWAL-LETTER",
        carrier_language="it",
        packaging="US-ENVELOPE",
        inserts=("FLYER-WELCOME",),
        shipment_type=ShipmentType.BULK,
        has_bulk_container=False,
        delivery_country="CH",
    )

    assert codes_and_fields(found) == [
        ("PAN_OUTSIDE_BIN_RANGE", "encryptedData.pan"),
        ("CARD_DESIGN_UNKNOWN", "cardDesign.cardImage"),
        ("PAYMENT_APPLICATION_REQUIRED", "paymentApplication"),
        ("CARDHOLDER_NAME_REQUIRED", "encryptedData.name"),
        ("PRIORITY_NOT_ALLOWED", "services.priority"),
        ("CARD_CARRIER_NOT_ALLOWED", "services.cardCarrier"),
        ("CARRIER_LANGUAGE_NOT_SUPPORTED", "cardCarrierConfig.language"),
        ("PACKAGING_NOT_ALLOWED", "services.packaging"),
        ("INSERT_NOT_ALLOWED", "packagingConfig.inserts[0]"),
        ("COUNTRY_NOT_ALLOWED", "shipment.deliveryAddress.countryCode"),
        ("BULK_CONTAINER_REQUIRED", "shipment.groupId"),
    ]
    assert all(p.message for p in found)


def test_problems_found_together_do_not_leak_the_pan(issuer: IssuerConfig) -> None:
    found = problems(issuer, pan=PREPAID_PAN, card_image="GOLD", delivery_country="CH")

    assert len(found) == 3
    assert all(PREPAID_PAN not in p.message for p in found)

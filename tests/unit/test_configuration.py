"""Program configuration: the sandbox file validates; each mistake is reported at its exact path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from issuance.domain.centres import PersonalizationCentre
from issuance.domain.configuration import PlatformConfig
from issuance.domain.programs import DEFAULT_SLA, BinRange, CardProduct, IssuanceType, SlaRule
from tests.unit.builders import DEMO, sandbox_document

Document = dict[str, Any]


def refused(document: Document) -> list[ErrorDetails]:
    with pytest.raises(ValidationError) as raised:
        PlatformConfig.model_validate(document)
    return list(raised.value.errors(include_url=False, include_input=False))


def reference_problems(document: Document) -> list[str]:
    """The cross-reference problems, one per line, without pydantic's prefix."""
    [error] = refused(document)
    assert error["loc"] == ()
    message = str(error["msg"]).removeprefix("Value error, ")
    return message.split("; ")


def demo(document: Document) -> Document:
    issuer: Document = document["issuers"][0]
    assert issuer["issuerId"] == DEMO
    return issuer


# The sandbox file


def test_the_bundled_sandbox_configuration_validates() -> None:
    config = PlatformConfig.model_validate(sandbox_document())

    assert [i.issuer_id for i in config.issuers] == ["DEMOBANK01", "OTHERBNK02"]
    assert {c.centre_id for c in config.personalization_centres} == {"PC-PARIS", "PC-NEWARK"}


def test_the_sandbox_is_read_from_camel_case_into_snake_case() -> None:
    config = PlatformConfig.model_validate(sandbox_document())
    issuer = config.issuer(DEMO)

    assert issuer is not None
    debit = issuer.card_product("DEMO-DEBIT")
    assert debit is not None
    assert debit.bin_ranges == (BinRange(low="45399100", high="45399199"),)
    assert debit.default_variant_id == "DEBIT-BLUE"
    assert issuer.program("DEMO-MC").priorities == ("STANDARD", "URGENT", "VIP")
    assert issuer.program("DEMO-VISA").sla == DEFAULT_SLA
    assert config.centre("PC-NEWARK").time_zone == "America/New_York"


def test_lookups_of_absent_things_return_none() -> None:
    config = PlatformConfig.model_validate(sandbox_document())

    assert config.issuer("NOBANK0000") is None
    issuer = config.issuer(DEMO)
    assert issuer is not None
    assert issuer.card_product("OTHER-CLASSIC") is None  # another issuer's product
    assert issuer.card_product(None) is None


def test_unknown_fields_are_refused_with_their_path() -> None:
    document = sandbox_document()
    demo(document)["programs"][1]["allowedCountry"] = ["FR"]

    [error] = refused(document)

    assert error["loc"] == ("issuers", 0, "programs", 1, "allowedCountry")
    assert error["type"] == "extra_forbidden"


# Cross-references


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["issuers"][0]["programs"][0]["shippingMethodIds"].__setitem__(1, "pigeon"),
            "issuers[0].programs[0].shippingMethodIds[1]: unknown shipping method 'pigeon'",
        ),
        (
            lambda d: d["issuers"][0]["programs"][1]["carrierIds"].append("POSTCARD"),
            "issuers[0].programs[1].carrierIds[2]: unknown carrier template 'POSTCARD'",
        ),
        (
            lambda d: d["issuers"][1]["programs"][0]["packagingIds"].insert(0, "SACK"),
            "issuers[1].programs[0].packagingIds[0]: unknown packaging option 'SACK'",
        ),
        (
            lambda d: d["issuers"][0]["packagingOptions"][1]["allowedInserts"].append(
                "LETTER-WELCOME"
            ),
            "issuers[0].packagingOptions[1].allowedInserts[1]: unknown insert stock item 'LETTER-WELCOME'",
        ),
    ],
    ids=["shipping-method", "carrier", "packaging", "insert-of-wrong-kind"],
)
def test_a_broken_list_reference_is_reported_at_its_index(
    mutate: Callable[[Document], None], expected: str
) -> None:
    document = sandbox_document()
    mutate(document)

    assert reference_problems(document) == [expected]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["issuers"][0]["cardProducts"][2].__setitem__("programId", "DEMO-AMEX"),
            "issuers[0].cardProducts[2].programId: unknown program 'DEMO-AMEX'",
        ),
        (
            lambda d: d["issuers"][1]["cardProducts"][0].__setitem__(
                "personalizationProfileId", "X"
            ),
            "issuers[1].cardProducts[0].personalizationProfileId: unknown personalization profile 'X'",
        ),
        (
            lambda d: d["issuers"][0]["cardProducts"][0]["variants"][1].__setitem__(
                "stockItemId", "LETTER-WELCOME"
            ),
            "issuers[0].cardProducts[0].variants[1].stockItemId: "
            "unknown card body stock item 'LETTER-WELCOME'",
        ),
        (
            lambda d: d["issuers"][0]["carrierTemplates"][1].__setitem__(
                "stockItemId", "BODY-GOLD"
            ),
            "issuers[0].carrierTemplates[1].stockItemId: unknown carrier stock item 'BODY-GOLD'",
        ),
        (
            lambda d: d["issuers"][1]["packagingOptions"][0].__setitem__(
                "stockItemId", "CARRIER-STD"
            ),
            "issuers[1].packagingOptions[0].stockItemId: unknown packaging stock item 'CARRIER-STD'",
        ),
        (
            lambda d: d["issuers"][0]["programs"][1].__setitem__(
                "personalizationCentreId", "PC-LYON"
            ),
            "issuers[0].programs[1].personalizationCentreId: unknown personalization centre 'PC-LYON'",
        ),
    ],
    ids=["program", "profile", "variant-stock-kind", "carrier-stock", "packaging-stock", "centre"],
)
def test_a_broken_single_reference_is_reported_at_its_field_without_index(
    mutate: Callable[[Document], None], expected: str
) -> None:
    document = sandbox_document()
    mutate(document)

    assert reference_problems(document) == [expected]


def test_every_broken_reference_is_reported_at_once() -> None:
    document = sandbox_document()
    demo(document)["programs"][0]["shippingMethodIds"] = ["pigeon", "laposte-lettre", "drone"]
    document["issuers"][1]["programs"][0]["carrierIds"] = ["NONE"]

    problems = reference_problems(document)

    assert [p.split(":")[0] for p in problems] == [
        "issuers[0].programs[0].shippingMethodIds[0]",
        "issuers[0].programs[0].shippingMethodIds[2]",
        "issuers[1].programs[0].carrierIds[0]",
    ]


def test_a_reference_to_another_issuers_item_is_broken() -> None:
    document = sandbox_document()
    demo(document)["programs"][0]["shippingMethodIds"].append("usps-first-class")

    assert reference_problems(document) == [
        "issuers[0].programs[0].shippingMethodIds[3]: unknown shipping method 'usps-first-class'"
    ]


# Duplicate ids


def test_duplicate_centre_ids_are_reported() -> None:
    document = sandbox_document()
    document["personalizationCentres"][1]["centreId"] = "PC-PARIS"
    document["issuers"][1]["programs"][0]["personalizationCentreId"] = "PC-PARIS"

    assert reference_problems(document) == [
        "personalizationCentres[1].centreId: duplicate id 'PC-PARIS'"
    ]


def test_duplicate_issuer_ids_are_reported() -> None:
    document = sandbox_document()
    document["issuers"][1]["issuerId"] = DEMO

    assert "issuers[1].issuerId: duplicate id 'DEMOBANK01'" in reference_problems(document)


def test_a_client_id_used_by_two_issuers_is_reported_where_it_is_repeated() -> None:
    document = sandbox_document()
    document["issuers"][1]["clients"].append({"clientId": "demobank01", "secret": "s"})

    assert reference_problems(document) == [
        "issuers[1].clients[1].clientId: duplicate id 'demobank01'"
    ]


@pytest.mark.parametrize(
    ("collection", "key"),
    [
        ("cardProducts", "cardProductId"),
        ("programs", "programId"),
        ("stockItems", "stockItemId"),
        ("shippingMethods", "methodId"),
        ("carrierTemplates", "carrierId"),
        ("packagingOptions", "packagingId"),
        ("personalizationProfiles", "profileId"),
        ("notificationEndpoints", "endpointId"),
    ],
)
def test_a_duplicate_id_within_an_issuer_is_reported_at_its_path(collection: str, key: str) -> None:
    document = sandbox_document()
    items = demo(document)[collection]
    repeated = items[0][key]
    items.append(dict(items[0]))

    problems = reference_problems(document)

    assert f"issuers[0].{collection}[{len(items) - 1}].{key}: duplicate id {repeated!r}" in problems


def test_a_renamed_card_product_that_collides_is_the_only_problem() -> None:
    document = sandbox_document()
    demo(document)["cardProducts"][2]["cardProductId"] = "DEMO-DEBIT"

    assert reference_problems(document) == [
        "issuers[0].cardProducts[2].cardProductId: duplicate id 'DEMO-DEBIT'"
    ]


# Field-level rules


@pytest.mark.parametrize("zone", ["Europe/Pariss", "europe/paris", "CET+1", "", "../etc/passwd"])
def test_an_unknown_time_zone_is_refused_at_its_path(zone: str) -> None:
    document = sandbox_document()
    document["personalizationCentres"][1]["timeZone"] = zone

    [error] = refused(document)

    assert error["loc"] == ("personalizationCentres", 1, "timeZone")
    assert "is not an IANA time zone" in error["msg"]


@pytest.mark.parametrize("zone", ["Europe", "America"])
def test_a_time_zone_area_without_city_is_refused(zone: str) -> None:
    # ZoneInfo("Europe") finds a directory and raises IsADirectoryError, not ZoneInfoNotFoundError
    document = sandbox_document()
    document["personalizationCentres"][0]["timeZone"] = zone

    [error] = refused(document)

    assert error["loc"] == ("personalizationCentres", 0, "timeZone")
    assert "is not an IANA time zone" in error["msg"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("XX", "is not an ISO 3166-1 alpha-2 country code"),
        ("UK", "is not an ISO 3166-1 alpha-2 country code"),
        ("fr", "should match pattern"),
        ("FRA", "should match pattern"),
    ],
)
def test_a_bad_country_code_is_refused_at_its_index(code: str, message: str) -> None:
    document = sandbox_document()
    demo(document)["programs"][1]["allowedCountries"] = ["FR", code]

    [error] = refused(document)

    assert error["loc"] == ("issuers", 0, "programs", 1, "allowedCountries", 1)
    assert message in error["msg"]


def test_a_bad_return_address_country_is_refused() -> None:
    document = sandbox_document()
    document["issuers"][1]["returnAddress"]["countryCode"] = "ZZ"

    [error] = refused(document)

    assert error["loc"] == ("issuers", 1, "returnAddress", "countryCode")


def test_a_bad_carrier_language_is_refused() -> None:
    document = sandbox_document()
    demo(document)["carrierTemplates"][0]["languages"] = ["en", "qq"]

    [error] = refused(document)

    assert error["loc"] == ("issuers", 0, "carrierTemplates", 0, "languages", 1)
    assert "ISO 639-1" in error["msg"]


def test_a_default_variant_must_be_one_of_the_variants() -> None:
    with pytest.raises(ValidationError, match="defaultVariantId 'RED' is not a variant"):
        CardProduct.model_validate(
            {
                "cardProductId": "P",
                "name": "P",
                "programId": "PROG",
                "binRanges": [{"low": "400000", "high": "400000"}],
                "personalizationProfileId": "PROFILE",
                "variants": [{"variantId": "BLUE", "stockItemId": "BODY"}],
                "defaultVariantId": "RED",
            }
        )


def test_a_centre_has_sensible_defaults() -> None:
    centre = PersonalizationCentre(centre_id="PC-X", name="X", time_zone="UTC")

    assert (centre.cut_off.hour, centre.pickup_time.hour) == (15, 17)
    assert [d.value for d in centre.working_days] == ["MON", "TUE", "WED", "THU", "FRI"]


# BIN ranges


@pytest.mark.parametrize(
    ("low", "high"),
    [("45399100", "45399199"), ("541275", "541275"), ("40000000000", "49999999999")],
)
def test_a_well_formed_bin_range_is_accepted(low: str, high: str) -> None:
    assert BinRange(low=low, high=high).low == low


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        ("45399199", "45399100", "low <= high"),
        ("453991", "45399199", "same length"),
        ("45399", "45399", "should match pattern"),  # 5 digits: too short
        ("453991000000", "453991999999", "should match pattern"),  # 12 digits: too long
        ("4539910a", "45399199", "should match pattern"),
    ],
)
def test_a_malformed_bin_range_is_refused(low: str, high: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BinRange(low=low, high=high)


@pytest.mark.parametrize(
    ("pan", "inside"),
    [
        ("4539910000000000", True),  # low end
        ("4539919999999999", True),  # high end
        ("4539915512345678", True),
        ("4539909999999999", False),  # just below
        ("4539920000000000", False),  # just above
        ("5539915512345678", False),
        ("4539", False),  # shorter than the prefix
    ],
)
def test_bin_range_contains_compares_the_prefix(pan: str, inside: bool) -> None:
    assert BinRange(low="45399100", high="45399199").contains(pan) is inside


# SLA rules


@pytest.mark.parametrize(
    "fields",
    [{"workingDays": 2}, {"hours": 4}, {"workingDays": 0, "issuance": "RENEWAL"}],
)
def test_an_sla_rule_with_one_duration_is_accepted(fields: dict[str, Any]) -> None:
    SlaRule.model_validate(fields)


@pytest.mark.parametrize("fields", [{}, {"workingDays": 2, "hours": 4}, {"priority": "URGENT"}])
def test_an_sla_rule_needs_exactly_one_duration(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of workingDays or hours"):
        SlaRule.model_validate(fields)


@pytest.mark.parametrize("fields", [{"hours": 0}, {"hours": 73}, {"workingDays": 61}])
def test_an_sla_duration_out_of_bounds_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SlaRule.model_validate(fields)


def test_an_sla_rule_in_a_program_is_checked_at_its_path() -> None:
    document = sandbox_document()
    document["issuers"][1]["programs"][0]["sla"][1] = {"issuance": "RENEWAL"}

    errors = refused(document)

    # pydantic adds "programs: Tuple should have at least 1 item" as the only program failed
    assert errors[0]["loc"] == ("issuers", 1, "programs", 0, "sla", 1)
    assert "exactly one of workingDays or hours" in errors[0]["msg"]


def test_the_default_sla_covers_every_issuance_type() -> None:
    assert {rule.issuance for rule in DEFAULT_SLA} >= set(IssuanceType)

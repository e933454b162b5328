"""Program configuration: what each issuer may order, as configured before it goes live.

D1's "Before you begin" asks issuers to configure card products, personalization profiles,
letter (carrier) templates, stock items and product variants, packaging, shipping methods, a return
address and the destination countries allowed per program. These frozen models are that
configuration; they are validated once when loaded (`issuance config load`), with errors that
name the exact field, and order validation reads them without I/O.

The YAML and JSON forms use D1's camelCase; Python code uses snake_case attributes.
"""

from __future__ import annotations

import re
from datetime import date, time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
IssuerId = Annotated[str, StringConstraints(min_length=10, max_length=10)]


def _known_country(code: str) -> str:
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _known_language(code: str) -> str:
    if pycountry.languages.get(alpha_2=code) is None:
        raise ValueError(f"{code!r} is not an ISO 639-1 language code")
    return code


CountryCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{2}$"), AfterValidator(_known_country)
]
LanguageCode = Annotated[
    str, StringConstraints(pattern=r"^[a-z]{2}$"), AfterValidator(_known_language)
]


class ConfigModel(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class IssuanceType(StrEnum):
    """`services.issuance`: why the card is made."""

    CREATION = "CREATION"  # a new card for a new cardholder
    RENEWAL = "RENEWAL"  # the card nears its expiry date
    REPLACEMENT = "REPLACEMENT"  # the card was lost, stolen or damaged


class Weekday(StrEnum):
    MON = "MON"
    TUE = "TUE"
    WED = "WED"
    THU = "THU"
    FRI = "FRI"
    SAT = "SAT"
    SUN = "SUN"


class PersonalizationCentre(ConfigModel):
    """A site that personalizes cards: its clock and calendar drive the SLA due date."""

    centre_id: Identifier
    name: str
    time_zone: str
    cut_off: time = time(15, 0)  # local time; requests strictly after it start the next day
    pickup_time: time = time(17, 0)  # local time the carrier collects the day's cards
    working_days: Annotated[tuple[Weekday, ...], Field(min_length=1)] = (
        Weekday.MON,
        Weekday.TUE,
        Weekday.WED,
        Weekday.THU,
        Weekday.FRI,
    )
    holiday_country: CountryCode | None = None  # public holidays from the `holidays` package
    holiday_subdivision: str | None = None
    closed_dates: tuple[date, ...] = ()  # extra ISO dates the centre is closed

    @model_validator(mode="after")
    def _calendar_is_coherent(self) -> PersonalizationCentre:
        if self.cut_off > self.pickup_time:
            raise ValueError("cutOff must not be later than pickupTime")
        if self.holiday_country is not None:
            try:
                holidays.country_holidays(
                    self.holiday_country, subdiv=self.holiday_subdivision, years=2026
                )
            except NotImplementedError:
                raise ValueError(
                    f"no public holiday calendar for {self.holiday_country} {self.holiday_subdivision or ''}"
                ) from None
        elif self.holiday_subdivision is not None:
            raise ValueError("holidaySubdivision needs a holidayCountry")
        return self

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value


class StockKind(StrEnum):
    CARD_BODY = "CARD_BODY"  # a blank plastic or metal card of one design
    CARRIER = "CARRIER"  # the letter the card is affixed to
    PACKAGING = "PACKAGING"  # envelope, sleeve or box
    INSERT = "INSERT"  # flyers and leaflets put in with the card


class StockItem(ConfigModel):
    """A consumable held at a personalization centre, counted in units."""

    stock_item_id: Identifier
    kind: StockKind
    description: str = ""
    quantity: int = Field(ge=0)


class BinRange(ConfigModel):
    """An inclusive range of PAN prefixes of the same length, e.g. 45399100..45399199."""

    low: Annotated[str, StringConstraints(pattern=r"^[0-9]{6,11}$")]
    high: Annotated[str, StringConstraints(pattern=r"^[0-9]{6,11}$")]

    @model_validator(mode="after")
    def _ordered(self) -> BinRange:
        if len(self.low) != len(self.high) or self.low > self.high:
            raise ValueError("low and high must have the same length and low <= high")
        return self

    def contains(self, pan: str) -> bool:
        prefix = pan[: len(self.low)]
        return self.low <= prefix <= self.high


class ProductVariant(ConfigModel):
    """One look of a card product (`cardDesign.cardImage`), made from one card body stock item."""

    variant_id: Identifier
    stock_item_id: Identifier


class PersonalizationProfile(ConfigModel):
    """What the personalization machines write on a card of this profile."""

    profile_id: Identifier
    graphical: bool = True  # print name, PAN, expiry on the card body
    magstripe: bool = True  # encode tracks 1 and 2
    chip: bool = False  # load an EMV application; `paymentApplication` is then required
    chip_profile: str | None = None  # e.g. "VIS 1.6.3 + VCPS 2.2.4", "M/Chip Advance 1.2.3"


class CardProduct(ConfigModel):
    """`cardProductId`: the product a card is made as, within one program."""

    card_product_id: Identifier
    name: str
    program_id: Identifier
    bin_ranges: tuple[BinRange, ...] = Field(min_length=1)
    personalization_profile_id: Identifier
    variants: tuple[ProductVariant, ...] = Field(min_length=1)
    default_variant_id: Identifier | None = None  # used when `cardDesign.cardImage` is absent

    @model_validator(mode="after")
    def _default_is_a_variant(self) -> CardProduct:
        ids = {v.variant_id for v in self.variants}
        if self.default_variant_id is not None and self.default_variant_id not in ids:
            raise ValueError(f"defaultVariantId {self.default_variant_id!r} is not a variant")
        return self

    def variant(self, variant_id: str | None) -> ProductVariant | None:
        wanted = variant_id or self.default_variant_id or self.variants[0].variant_id
        return next((v for v in self.variants if v.variant_id == wanted), None)


class CarrierTemplate(ConfigModel):
    """`services.cardCarrier`: a letter template the card is affixed to."""

    carrier_id: Identifier
    stock_item_id: Identifier
    languages: tuple[LanguageCode, ...] = ("en",)
    issuance_types: tuple[IssuanceType, ...] = tuple(IssuanceType)


class PackagingOption(ConfigModel):
    """`services.packaging`: how the card (and its carrier) is packed."""

    packaging_id: Identifier
    stock_item_id: Identifier
    allowed_inserts: tuple[Identifier, ...] = ()  # stock item ids of kind INSERT


class ShipmentType(StrEnum):
    INDIVIDUAL = "INDIVIDUAL"  # one parcel per card, to the cardholder
    BULK = "BULK"  # cards grouped in containers, to a branch or a hub


class ShippingMethod(ConfigModel):
    """`services.delivery`: a carrier service the centre can hand cards to."""

    method_id: Identifier
    carrier: str
    shipment_types: tuple[ShipmentType, ...] = (ShipmentType.INDIVIDUAL,)


class SlaRule(ConfigModel):
    """How long production may take: `days` working days, or `hours` when urgent."""

    issuance: IssuanceType | None = None  # None: any issuance type
    priority: str | None = None  # None: any priority (incl. absent)
    working_days: int | None = Field(default=None, ge=0, le=60)
    hours: int | None = Field(default=None, ge=1, le=72)
    before: time | None = None  # an hours rule applies only to requests received before this

    @model_validator(mode="after")
    def _one_duration(self) -> SlaRule:
        if (self.working_days is None) == (self.hours is None):
            raise ValueError("give exactly one of workingDays or hours")
        return self


DEFAULT_SLA = (
    SlaRule(priority="URGENT", hours=4, before=time(12, 0)),
    SlaRule(issuance=IssuanceType.CREATION, working_days=1),
    SlaRule(issuance=IssuanceType.REPLACEMENT, working_days=1),
    SlaRule(issuance=IssuanceType.RENEWAL, working_days=10),
)


class Program(ConfigModel):
    """A card program (usually a BIN): where its cards are made and where they may go."""

    program_id: Identifier
    personalization_centre_id: Identifier
    allowed_countries: tuple[CountryCode, ...] = Field(min_length=1)
    shipping_method_ids: tuple[Identifier, ...] = ()
    carrier_ids: tuple[Identifier, ...] = ()
    packaging_ids: tuple[Identifier, ...] = ()
    priorities: tuple[Annotated[str, StringConstraints(pattern=r"^[A-Z0-9_]{1,32}$")], ...] = (
        "STANDARD",
        "URGENT",
    )
    sla: tuple[SlaRule, ...] = DEFAULT_SLA


class Address(ConfigModel):
    """A postal address in D1's shape."""

    company_name: str | None = None
    line1: str
    line2: str | None = None
    line3: str | None = None
    zip_code: str
    city: str
    state: str | None = None
    country_code: CountryCode


_SECRET_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


class ApiClient(ConfigModel):
    """Credentials an issuer backend uses to obtain tokens.

    `secret` (clear, sandbox only) or `secretHash` ("sha256:<hex>") serve the client-credentials
    grant; `publicKeys` (EC P-256 JWKs with a `kid`) serve D1's JWT-bearer grant.
    """

    client_id: Identifier
    secret: str | None = None
    secret_hash: str | None = None
    public_keys: tuple[dict[str, str], ...] = ()

    @model_validator(mode="after")
    def _has_credentials(self) -> ApiClient:
        if self.secret is None and self.secret_hash is None and not self.public_keys:
            raise ValueError("give a secret, a secretHash or publicKeys: a client needs a way in")
        return self

    @field_validator("secret_hash")
    @classmethod
    def _hash_form(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_HASH.match(value):
            raise ValueError("secretHash must look like sha256:<64 hex digits>")
        return value


class Operator(ConfigModel):
    """A bureau operator (or operations tool) allowed to drive orders of every issuer."""

    operator_id: Identifier
    secret: str | None = None  # clear, sandbox only
    secret_hash: str | None = None  # "sha256:<hex>"

    @model_validator(mode="after")
    def _has_secret(self) -> Operator:
        if (self.secret is None) == (self.secret_hash is None):
            raise ValueError("give exactly one of secret or secretHash")
        if self.secret_hash is not None and not _SECRET_HASH.match(self.secret_hash):
            raise ValueError("secretHash must look like sha256:<64 hex digits>")
        return self


class NotificationEndpoint(ConfigModel):
    """Where notifications for this issuer are sent (D1 path appended to `baseUrl`)."""

    endpoint_id: Identifier
    base_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    max_operations_per_call: int = Field(default=10, ge=1, le=1000)


class IssuerConfig(ConfigModel):
    """Everything configured for one issuer."""

    issuer_id: IssuerId
    name: str
    clients: tuple[ApiClient, ...] = Field(min_length=1)
    return_address: Address
    personalization_profiles: tuple[PersonalizationProfile, ...] = Field(min_length=1)
    stock_items: tuple[StockItem, ...] = ()
    card_products: tuple[CardProduct, ...] = Field(min_length=1)
    carrier_templates: tuple[CarrierTemplate, ...] = ()
    packaging_options: tuple[PackagingOption, ...] = ()
    shipping_methods: tuple[ShippingMethod, ...] = ()
    programs: tuple[Program, ...] = Field(min_length=1)
    notification_endpoints: tuple[NotificationEndpoint, ...] = ()

    def card_product(self, card_product_id: str | None) -> CardProduct | None:
        return next((p for p in self.card_products if p.card_product_id == card_product_id), None)

    def program(self, program_id: str) -> Program:
        return next(p for p in self.programs if p.program_id == program_id)

    def profile(self, profile_id: str) -> PersonalizationProfile:
        return next(p for p in self.personalization_profiles if p.profile_id == profile_id)

"""Program configuration: what each issuer may order, as configured before it goes live.

D1's "Before you begin" asks issuers to configure card products, personalization profiles,
letter (carrier) templates, stock items and product variants, packaging, shipping methods, a return
address and the destination countries allowed per program. These frozen models are that
configuration; they are validated once when loaded (`issuance config load`), with errors that
name the exact field, and order validation reads them without I/O.

The YAML and JSON forms use D1's camelCase; Python code uses snake_case attributes.
"""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Annotated

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from issuance.domain.parties import Address, ApiClient, NotificationEndpoint
from issuance.domain.programs_base import (
    ConfigModel,
    CountryCode,
    Identifier,
    IssuerId,
    LanguageCode,
)


class IssuanceType(StrEnum):
    """`services.issuance`: why the card is made."""

    CREATION = "CREATION"  # a new card for a new cardholder
    RENEWAL = "RENEWAL"  # the card nears its expiry date
    REPLACEMENT = "REPLACEMENT"  # the card was lost, stolen or damaged


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

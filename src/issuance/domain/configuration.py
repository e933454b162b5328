"""The whole platform configuration and its cross-references.

Each reference (a card product's program, a program's shipping methods, a carrier's stock
item...) must name something that exists. A broken reference is reported with the path of the
field that holds it, e.g. `issuers[0].programs[1].shippingMethodIds[2]`, so a YAML author can find
it at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from issuance.domain.centres import PersonalizationCentre
from issuance.domain.parties import Operator
from issuance.domain.programs import IssuerConfig, StockKind
from issuance.domain.programs_base import ConfigModel


class PlatformConfig(ConfigModel):
    """The document `issuance config load` reads."""

    version: int = Field(default=1, ge=1, le=1)
    operators: tuple[Operator, ...] = ()
    personalization_centres: tuple[PersonalizationCentre, ...] = Field(min_length=1)
    issuers: tuple[IssuerConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> PlatformConfig:
        problems = list(_broken_references(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def issuer(self, issuer_id: str) -> IssuerConfig | None:
        return next((i for i in self.issuers if i.issuer_id == issuer_id), None)

    def centre(self, centre_id: str) -> PersonalizationCentre:
        return next(c for c in self.personalization_centres if c.centre_id == centre_id)


def _unknown(path: str, values: Iterable[str], known: set[str], what: str) -> Iterator[str]:
    """A list of references: each unknown one reported at its index."""
    for index, value in enumerate(values):
        yield from _unknown_one(f"{path}[{index}]", value, known, what)


def _unknown_one(path: str, value: str, known: set[str], what: str) -> Iterator[str]:
    if value not in known:
        yield f"{path}: unknown {what} {value!r}"


def _duplicates(path: str, ids: list[str], key: str) -> Iterator[str]:
    seen: set[str] = set()
    for index, value in enumerate(ids):
        if value in seen:
            yield f"{path}[{index}].{key}: duplicate id {value!r}"
        seen.add(value)


# Every collection of an issuer and the key that identifies its items.
_ISSUER_COLLECTIONS = {
    "personalizationProfiles": ("personalization_profiles", "profile_id"),
    "stockItems": ("stock_items", "stock_item_id"),
    "cardProducts": ("card_products", "card_product_id"),
    "carrierTemplates": ("carrier_templates", "carrier_id"),
    "packagingOptions": ("packaging_options", "packaging_id"),
    "shippingMethods": ("shipping_methods", "method_id"),
    "programs": ("programs", "program_id"),
    "notificationEndpoints": ("notification_endpoints", "endpoint_id"),
}


def _issuer_duplicates(at: str, issuer: IssuerConfig) -> Iterator[str]:
    for name, (attribute, key) in _ISSUER_COLLECTIONS.items():
        ids = [getattr(item, key) for item in getattr(issuer, attribute)]
        yield from _duplicates(f"{at}.{name}", ids, to_camel(key))


def _client_duplicates(config: PlatformConfig) -> Iterator[str]:
    """Client ids are global (operators included): a token names its client, not its issuer."""
    seen: set[str] = set()
    for n, operator in enumerate(config.operators):
        if operator.operator_id in seen:
            yield f"operators[{n}].operatorId: duplicate id {operator.operator_id!r}"
        seen.add(operator.operator_id)
    for n, issuer in enumerate(config.issuers):
        for m, client in enumerate(issuer.clients):
            if client.client_id in seen:
                yield f"issuers[{n}].clients[{m}].clientId: duplicate id {client.client_id!r}"
            seen.add(client.client_id)


def _broken_references(config: PlatformConfig) -> Iterator[str]:
    centres = {c.centre_id for c in config.personalization_centres}
    centre_ids = [c.centre_id for c in config.personalization_centres]
    yield from _duplicates("personalizationCentres", centre_ids, "centreId")
    yield from _duplicates("issuers", [i.issuer_id for i in config.issuers], "issuerId")
    yield from _client_duplicates(config)
    for n, issuer in enumerate(config.issuers):
        yield from _issuer_duplicates(f"issuers[{n}]", issuer)
        yield from _issuer_references(f"issuers[{n}]", issuer, centres)


def _issuer_references(at: str, issuer: IssuerConfig, centres: set[str]) -> Iterator[str]:
    stock = {s.stock_item_id: s.kind for s in issuer.stock_items}
    profiles = {p.profile_id for p in issuer.personalization_profiles}
    programs = {p.program_id for p in issuer.programs}
    methods = {m.method_id for m in issuer.shipping_methods}
    carriers = {c.carrier_id for c in issuer.carrier_templates}
    packagings = {p.packaging_id for p in issuer.packaging_options}

    def stock_of(kind: StockKind) -> set[str]:
        return {sid for sid, k in stock.items() if k is kind}

    for n, product in enumerate(issuer.card_products):
        here = f"{at}.cardProducts[{n}]"
        yield from _unknown_one(f"{here}.programId", product.program_id, programs, "program")
        yield from _unknown_one(
            f"{here}.personalizationProfileId",
            product.personalization_profile_id,
            profiles,
            "personalization profile",
        )
        bodies = stock_of(StockKind.CARD_BODY)
        for v, variant in enumerate(product.variants):
            yield from _unknown_one(
                f"{here}.variants[{v}].stockItemId",
                variant.stock_item_id,
                bodies,
                "card body stock item",
            )
    for n, carrier in enumerate(issuer.carrier_templates):
        yield from _unknown_one(
            f"{at}.carrierTemplates[{n}].stockItemId",
            carrier.stock_item_id,
            stock_of(StockKind.CARRIER),
            "carrier stock item",
        )
    for n, pack in enumerate(issuer.packaging_options):
        here = f"{at}.packagingOptions[{n}]"
        yield from _unknown_one(
            f"{here}.stockItemId",
            pack.stock_item_id,
            stock_of(StockKind.PACKAGING),
            "packaging stock item",
        )
        yield from _unknown(
            f"{here}.allowedInserts",
            pack.allowed_inserts,
            stock_of(StockKind.INSERT),
            "insert stock item",
        )
    for n, program in enumerate(issuer.programs):
        here = f"{at}.programs[{n}]"
        yield from _unknown_one(
            f"{here}.personalizationCentreId",
            program.personalization_centre_id,
            centres,
            "personalization centre",
        )
        yield from _unknown(
            f"{here}.shippingMethodIds", program.shipping_method_ids, methods, "shipping method"
        )
        yield from _unknown(f"{here}.carrierIds", program.carrier_ids, carriers, "carrier template")
        yield from _unknown(
            f"{here}.packagingIds", program.packaging_ids, packagings, "packaging option"
        )

"""The whole platform configuration and its cross-references.

Each reference (a card product's program, a program's shipping methods, a carrier's stock
item...) must name something that exists. A broken reference is reported with the path of the
field that holds it, e.g. `issuers[0].programs[1].shippingMethodIds[2]`, so a YAML author can find
it at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import Field, model_validator

from issuance.domain.programs import (
    ConfigModel,
    IssuerConfig,
    PersonalizationCentre,
    StockKind,
)


class PlatformConfig(ConfigModel):
    """The document `issuance config load` reads."""

    version: int = Field(default=1, ge=1, le=1)
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
    for index, value in enumerate(values):
        if value not in known:
            yield f"{path}[{index}]: unknown {what} {value!r}"


def _duplicates(path: str, ids: list[str]) -> Iterator[str]:
    seen: set[str] = set()
    for index, value in enumerate(ids):
        if value in seen:
            yield f"{path}[{index}]: duplicate id {value!r}"
        seen.add(value)


def _broken_references(config: PlatformConfig) -> Iterator[str]:
    centres = {c.centre_id for c in config.personalization_centres}
    yield from _duplicates(
        "personalizationCentres", [c.centre_id for c in config.personalization_centres]
    )
    yield from _duplicates("issuers", [i.issuer_id for i in config.issuers])
    client_ids = [c.client_id for i in config.issuers for c in i.clients]
    yield from _duplicates("clients", client_ids)
    for n, issuer in enumerate(config.issuers):
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

    yield from _duplicates(f"{at}.cardProducts", [p.card_product_id for p in issuer.card_products])
    for n, product in enumerate(issuer.card_products):
        here = f"{at}.cardProducts[{n}]"
        yield from _unknown(f"{here}.programId", [product.program_id], programs, "program")
        yield from _unknown(
            f"{here}.personalizationProfileId",
            [product.personalization_profile_id],
            profiles,
            "personalization profile",
        )
        bodies = stock_of(StockKind.CARD_BODY)
        for v, variant in enumerate(product.variants):
            yield from _unknown(
                f"{here}.variants[{v}].stockItemId",
                [variant.stock_item_id],
                bodies,
                "card body stock item",
            )
    for n, carrier in enumerate(issuer.carrier_templates):
        yield from _unknown(
            f"{at}.carrierTemplates[{n}].stockItemId",
            [carrier.stock_item_id],
            stock_of(StockKind.CARRIER),
            "carrier stock item",
        )
    for n, pack in enumerate(issuer.packaging_options):
        here = f"{at}.packagingOptions[{n}]"
        yield from _unknown(
            f"{here}.stockItemId",
            [pack.stock_item_id],
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
        yield from _unknown(
            f"{here}.personalizationCentreId",
            [program.personalization_centre_id],
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

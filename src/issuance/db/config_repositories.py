"""Issuer configuration, operators, API clients and stock levels, stored as rows."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import Integer, Result, Select, String, Text, bindparam, cast, select, update
from sqlalchemy.orm import Session

from issuance.db.models import (
    ApiClientRow,
    IssuerRow,
    OperatorRow,
    PersonalizationCentreRow,
    StockLevelRow,
)
from issuance.domain.centres import PersonalizationCentre
from issuance.domain.configuration import PlatformConfig
from issuance.domain.programs import IssuerConfig
from issuance.security.tokens import hash_secret
from issuance.services.unit_of_work import ClientRecord


def _client(row: ApiClientRow) -> ClientRecord:
    return ClientRecord(
        row.client_id,
        row.issuer_id,
        row.secret_hash,
        list(row.public_keys.get("keys", [])),
        certificate_fingerprint=row.certificate_fingerprint,
    )


# Looked up by every order placed: built once (building a statement costs more than running it).
ISSUER_STAMP = select(IssuerRow.config_version, IssuerRow.loaded_at).where(
    IssuerRow.issuer_id == bindparam("issuer_id", type_=String)
)
_ISSUER_STAMPS = select(IssuerRow.issuer_id, IssuerRow.config_version, IssuerRow.loaded_at)
_ISSUER_DOCUMENTS = select(
    IssuerRow.issuer_id, IssuerRow.config_version, IssuerRow.loaded_at, IssuerRow.config
).where(IssuerRow.issuer_id.in_(bindparam("issuer_ids", expanding=True)))
_CENTRE_DOCUMENT = select(cast(PersonalizationCentreRow.config, Text)).where(
    PersonalizationCentreRow.centre_id == bindparam("centre_id", type_=String)
)
CENTRE_DOCUMENTS = select(  # a bureau has a handful: read them all along with other statements
    PersonalizationCentreRow.centre_id, cast(PersonalizationCentreRow.config, Text)
)
_STOCK_MOVE = (  # a negative change takes, only if that many units are left
    update(StockLevelRow)
    .where(
        StockLevelRow.issuer_id == bindparam("issuer", type_=String),
        StockLevelRow.stock_item_id == bindparam("item", type_=String),
        StockLevelRow.quantity + bindparam("change", type_=Integer) >= 0,
    )
    .values(quantity=StockLevelRow.quantity + bindparam("change", type_=Integer))
)


class SqlStockRepository:
    """Stock levels; taking is one conditional UPDATE per item, so two takers never overdraw."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def take(self, issuer_id: str, items: tuple[str, ...]) -> list[str]:
        """One unit per item listed, or nothing: the items that ran short.

        A shortfall gives back, in the same transaction, what this call took. A savepoint did
        the same, but made the session flush at every card started: 35% of a production
        report's import (bench/production_report.py). The statements are Core, on the
        session's connection: they touch no row the session holds, so nothing to flush first.
        """
        connection = self.session.connection()
        taken: list[tuple[str, int]] = []
        missing: list[str] = []
        for item, count in Counter(items).items():
            moved = connection.execute(
                _STOCK_MOVE, {"issuer": issuer_id, "item": item, "change": -count}
            )
            if moved.rowcount == 1:
                taken.append((item, count))
            else:
                missing.append(item)
        if missing:
            for item, count in taken:
                connection.execute(
                    _STOCK_MOVE, {"issuer": issuer_id, "item": item, "change": count}
                )
        return missing

    def replenish(self, issuer_id: str, item: str, quantity: int) -> int:
        row = self.session.get(StockLevelRow, (issuer_id, item), with_for_update=True)
        if row is None:
            row = StockLevelRow(issuer_id=issuer_id, stock_item_id=item, quantity=0)
            self.session.add(row)
        row.quantity += quantity
        self.session.flush()
        return row.quantity

    def levels(self, issuer_id: str) -> dict[str, int]:
        rows = self.session.scalars(
            select(StockLevelRow)
            .where(StockLevelRow.issuer_id == issuer_id)
            .order_by(StockLevelRow.stock_item_id)
        )
        return {row.stock_item_id: row.quantity for row in rows}


class SqlConfigRepository:
    """Issuer configuration, validated once per version and cached by the process."""

    # Validated configurations by (issuer, version, load time): a version number alone could
    # repeat across databases used by one process (tests), a load time with it cannot.
    _cache: ClassVar[dict[tuple[str, int, datetime], IssuerConfig]] = {}
    # Validated centres by (centre, stored document as text): centres have no version, and
    # validating one builds its holiday calendars (~0.5 ms of every order, bench/intake.py).
    _centre_cache: ClassVar[dict[tuple[str, str], PersonalizationCentre]] = {}
    _CENTRE_CACHE_SIZE: ClassVar[int] = 256  # documents; a reload adds one per centre

    def __init__(self, session: Session) -> None:
        self.session = session
        self._seen: dict[str, IssuerConfig | None] = {}  # one look-up per unit of work
        self._centres: dict[str, PersonalizationCentre | None] = {}
        self._every_centre_read = False

    def issuer(self, issuer_id: str) -> IssuerConfig | None:
        if issuer_id not in self._seen:
            self._seen[issuer_id] = self._issuer(issuer_id)
        return self._seen[issuer_id]

    def issuer_stamped(self, issuer_id: str, stamp: tuple[Any, ...] | None) -> IssuerConfig | None:
        """`issuer`, given the row of `ISSUER_STAMP` read along with other statements."""
        if issuer_id not in self._seen:
            self._seen[issuer_id] = self._stamped(issuer_id, stamp)
        return self._seen[issuer_id]

    def _issuer(self, issuer_id: str) -> IssuerConfig | None:
        return self._stamped(issuer_id, self._read(ISSUER_STAMP, {"issuer_id": issuer_id}).first())

    def _stamped(self, issuer_id: str, stamp: tuple[Any, ...] | None) -> IssuerConfig | None:
        """The issuer's validated configuration at this (version, load time): from the cache, or
        read and validated once."""
        if stamp is None:
            return None
        config_version, loaded_at = stamp
        key = (issuer_id, config_version, loaded_at)
        if key not in self._cache:
            document = self.session.scalar(
                select(IssuerRow.config).where(IssuerRow.issuer_id == issuer_id)
            )
            self._cache[key] = IssuerConfig.model_validate(document)
        return self._cache[key]

    def _read(
        self, statement: Select[*tuple[Any, ...]], parameters: dict[str, Any]
    ) -> Result[*tuple[Any, ...]]:
        """A Core read on the session's connection, after the autoflush the ORM's execute would
        do: the same rows, for less CPU (an issuer and a centre read: ~410 → ~295 µs,
        PostgreSQL, in process). Every order reads both."""
        if self.session.autoflush:
            self.session.flush()
        return self.session.connection().execute(statement, parameters)

    def issuers(self) -> list[IssuerConfig]:
        """Every issuer, ordered by id: one read of the version stamps, then the documents of
        the versions not validated yet (none, mostly). The delivery worker reads them all at
        each claim; a stamp read per issuer made that 1 + N statements."""
        stamps = {
            row.issuer_id: (row.issuer_id, row.config_version, row.loaded_at)
            for row in self._read(_ISSUER_STAMPS, {})
        }
        stale = [issuer_id for issuer_id, key in stamps.items() if key not in self._cache]
        fresh: dict[str, IssuerConfig] = {}  # a reload between the two reads: the newer one
        if stale:
            for issuer_id, version, loaded_at, document in self._read(
                _ISSUER_DOCUMENTS, {"issuer_ids": stale}
            ):
                config = IssuerConfig.model_validate(document)
                fresh[issuer_id] = self._cache[(issuer_id, version, loaded_at)] = config
        found = []
        for issuer_id in sorted(stamps):
            seen = fresh.get(issuer_id) or self._cache.get(stamps[issuer_id])
            self._seen[issuer_id] = seen
            if seen is not None:  # removed between the two reads
                found.append(seen)
        return found

    def client(self, client_id: str) -> ClientRecord | None:
        row = self.session.get(ApiClientRow, client_id)
        if row is not None:
            return _client(row)
        operator = self.session.get(OperatorRow, client_id)
        if operator is None:
            return None
        return ClientRecord(operator.operator_id, "", operator.secret_hash, [], operator=True)

    def clients_of_key(self, kid: str) -> list[ClientRecord]:
        clients = [_client(row) for row in self.session.scalars(select(ApiClientRow))]
        return [c for c in clients if any(k.get("kid") == kid for k in c.public_keys)]

    def centre(self, centre_id: str) -> PersonalizationCentre | None:
        if centre_id not in self._centres and not self._every_centre_read:
            self._centres[centre_id] = self._centre(centre_id)
        return self._centres.get(centre_id)  # None: no such centre

    def centres_read(self, rows: Iterable[tuple[str, str]]) -> None:
        """Every centre, from the rows of `CENTRE_DOCUMENTS` read along with other statements:
        `centre` then reads nothing."""
        self._centres = {
            centre_id: self._parsed(centre_id, document) for centre_id, document in rows
        }
        self._every_centre_read = True

    def _centre(self, centre_id: str) -> PersonalizationCentre | None:
        document = self._read(_CENTRE_DOCUMENT, {"centre_id": centre_id}).scalar()
        return None if document is None else self._parsed(centre_id, document)

    def _parsed(self, centre_id: str, document: str) -> PersonalizationCentre:
        key = (centre_id, document)
        if key not in self._centre_cache:
            if len(self._centre_cache) >= self._CENTRE_CACHE_SIZE:
                self._centre_cache.clear()
            self._centre_cache[key] = PersonalizationCentre.model_validate(json.loads(document))
        return self._centre_cache[key]

    def current(self) -> PlatformConfig | None:
        centres = self.session.scalars(
            select(PersonalizationCentreRow).order_by(PersonalizationCentreRow.centre_id)
        ).all()
        issuers = self.session.scalars(select(IssuerRow).order_by(IssuerRow.issuer_id)).all()
        if not issuers:
            return None
        return PlatformConfig.model_validate(
            {
                "personalizationCentres": [c.config for c in centres],
                "issuers": [i.config for i in issuers],
            }
        )

    def replace(self, config: PlatformConfig) -> None:
        """Upsert every operator, centre, issuer and client (nothing is deleted: orders refer to them)."""
        self._seen.clear()
        for operator in config.operators:
            secret_hash = hash_secret(operator.secret) if operator.secret else operator.secret_hash
            self.session.merge(
                OperatorRow(operator_id=operator.operator_id, secret_hash=secret_hash)
            )
        for centre in config.personalization_centres:
            document = centre.model_dump(mode="json", by_alias=True)
            self.session.merge(
                PersonalizationCentreRow(centre_id=centre.centre_id, config=document)
            )
        for issuer in config.issuers:
            self._replace_issuer(issuer)

    def _replace_issuer(self, issuer: IssuerConfig) -> None:
        row = self.session.get(IssuerRow, issuer.issuer_id)
        document = issuer.model_dump(mode="json", by_alias=True, exclude_none=True)
        for client in document["clients"]:  # keep only the hash of a clear (sandbox) secret
            if "secret" in client:
                client["secretHash"] = hash_secret(client.pop("secret"))
        if row is None:
            row = IssuerRow(issuer_id=issuer.issuer_id, config_version=0)
            self.session.add(row)
        if row.config != document:
            row.config_version += 1
        row.name, row.config, row.loaded_at = issuer.name, document, datetime.now(UTC)
        self.session.flush()
        for item in issuer.stock_items:  # initial levels; later changes go through replenish
            if self.session.get(StockLevelRow, (issuer.issuer_id, item.stock_item_id)) is None:
                level = StockLevelRow(
                    issuer_id=issuer.issuer_id,
                    stock_item_id=item.stock_item_id,
                    quantity=item.quantity,
                )
                self.session.add(level)
        for client in issuer.clients:
            secret_hash = hash_secret(client.secret) if client.secret else client.secret_hash
            keys = {"keys": list(client.public_keys)}
            self.session.merge(
                ApiClientRow(
                    client_id=client.client_id,
                    issuer_id=issuer.issuer_id,
                    secret_hash=secret_hash,
                    public_keys=keys,
                    certificate_fingerprint=client.certificate_fingerprint,
                )
            )

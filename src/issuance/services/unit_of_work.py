"""The ports the use cases need: a unit of work over orders and issuer configuration.

`commit()` writes the changed orders and, in the same transaction, one journal event per recorded
domain event, each with the next per-card sequence number. Nothing changes state without its
event, because there is no other way to save an order.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from issuance.domain.audit import AuditEntry
from issuance.domain.centres import PersonalizationCentre
from issuance.domain.configuration import PlatformConfig
from issuance.domain.containers import Container
from issuance.domain.orders import Order
from issuance.domain.programs import IssuerConfig


class Collision(Exception):
    """A concurrent transaction committed the same idempotency key or card first."""


class OrderRepository(Protocol):
    def add(
        self,
        order: Order,
        *,
        request: dict[str, Any],
        fingerprint: str,
        sealed: tuple[str, bytes] | None,
        encrypted_data_digest: str | None = None,
    ) -> None: ...

    def by_issuer_request_id(
        self, issuer_id: str, issuer_request_id: str
    ) -> tuple[Order, str] | None:
        """The order placed with this key, with its request fingerprint."""
        ...

    def active_for_card(self, issuer_id: str, card_id: str) -> Order | None: ...

    def for_card(self, issuer_id: str, card_id: str) -> list[tuple[Order, int]]:
        """Every order of the card, oldest first, each with its latest event sequence."""
        ...

    def request_of(self, operation_id: str) -> dict[str, Any]:
        """The order's request as accepted (its non-sensitive part)."""
        ...

    def by_operation_id(self, operation_id: str) -> Order | None: ...

    def preload(self, operation_ids: Collection[str]) -> None:
        """Load these orders in one query, so `by_operation_id` finds them without another."""
        ...

    def preload_cards(self, cards: Collection[tuple[str, str]]) -> list[str]:
        """Load every order of these (issuer, card) pairs in one query per issuer, so that
        `latest_for_card` answers them without another; their operation ids."""
        ...

    def latest_for_card(self, issuer_id: str, card_id: str) -> Order | None:
        """The card's current order: the one in progress, else the most recent."""
        ...

    def in_flight(self, *, limit: int, issuer_id: str | None = None) -> list[Order]:
        """Orders still moving: in production, or shipped with a shipment not yet settled."""
        ...

    def search(
        self,
        *,
        issuer_id: str | None = None,
        statuses: tuple[str, ...] = (),
        limit: int = 100,
    ) -> list[Order]:
        """Orders, most recently changed first."""
        ...


class ContainerRepository(Protocol):
    """BULK first-level containers; their cards are orders, tracked like any other."""

    def ensure(
        self, issuer_id: str, group_id: str, *, order_id: str | None, at: datetime
    ) -> Container:
        """The container, created OPEN if new (concurrent creations make one); no shipment of
        it can commit before this unit of work does."""
        ...

    def get(self, issuer_id: str, group_id: str, *, lock: bool = False) -> Container | None:
        """The container; with `lock`, held against new cards and other changes until commit."""
        ...

    def save(self, container: Container) -> None:
        """Keep the changes of a container loaded by `get` or `ensure`."""
        ...

    def search(
        self,
        issuer_id: str | None,
        *,
        statuses: tuple[str, ...] = (),
        order_id: str | None = None,
        limit: int = 100,
    ) -> list[tuple[Container, int]]:
        """Containers (of every issuer for None), most recently changed first, each with its
        number of orders."""
        ...

    def members(self, issuer_id: str, group_id: str) -> list[Order]:
        """Every order placed into the container: its manifest."""
        ...

    def unchanged_since(
        self, statuses: tuple[str, ...], *, before: datetime, limit: int
    ) -> list[Container]:
        """Containers of every issuer in these statuses, not changed since `before`."""
        ...


@dataclass(frozen=True, slots=True)
class SealedOrder:
    """An order with its sealed sensitive data (an envelope), or None once purged."""

    order: Order
    sealed: bytes | None
    key_id: str | None  # the master key wrapping its data key


class SensitiveDataRepository(Protocol):
    def purgeable(self, *, before: datetime, limit: int) -> list[Order]:
        """Orders still holding sensitive data that stopped being needed before `before`."""
        ...

    def sealed_in_batch(self, batch: str) -> list[SealedOrder]:
        """The orders of a production batch with their sealed data, by card id."""
        ...


class BureauEventLedger(Protocol):
    """The production-report lines already applied, by (operation, event, time it happened)."""

    def applied(self, operation_id: str, event: str, occurred_at: datetime) -> bool: ...

    def preload(self, operation_ids: Collection[str]) -> None:
        """Read these operations' lines in one query, so `applied` needs none for them."""
        ...

    def record(
        self, operation_id: str, event: str, occurred_at: datetime, *, at: datetime, report: str
    ) -> None: ...


class AuditLog(Protocol):
    """Append and read; there is no way to change or remove an entry."""

    def record(self, entry: AuditEntry) -> None: ...

    def entries(
        self,
        *,
        issuer_id: str | None = None,
        card_id: str | None = None,
        actor_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first."""
        ...


class StockRepository(Protocol):
    def take(self, issuer_id: str, items: tuple[str, ...]) -> list[str]:
        """Take one unit of each item, all or none; the items that ran out, if any."""
        ...

    def replenish(self, issuer_id: str, item: str, quantity: int) -> int:
        """Add units; the new level."""
        ...

    def levels(self, issuer_id: str) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """An API client as stored: its issuer, its secret hash, its public keys (JWKs)."""

    client_id: str
    issuer_id: str  # empty for an operator
    secret_hash: str | None
    public_keys: list[dict[str, Any]]
    operator: bool = False
    certificate_fingerprint: str | None = None  # the mTLS client certificate it is bound to


class ConfigRepository(Protocol):
    def issuer(self, issuer_id: str) -> IssuerConfig | None: ...

    def issuers(self) -> list[IssuerConfig]:
        """Every issuer's configuration, ordered by issuer id."""
        ...

    def client(self, client_id: str) -> ClientRecord | None: ...

    def clients_of_key(self, kid: str) -> list[ClientRecord]:
        """Clients with a public key of this `kid`."""
        ...

    def centre(self, centre_id: str) -> PersonalizationCentre | None: ...

    def replace(self, config: PlatformConfig) -> None: ...

    def current(self) -> PlatformConfig | None: ...


class UnitOfWork(Protocol):
    @property
    def orders(self) -> OrderRepository: ...

    @property
    def config(self) -> ConfigRepository: ...

    @property
    def stock(self) -> StockRepository: ...

    @property
    def sensitive(self) -> SensitiveDataRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def containers(self) -> ContainerRepository: ...

    @property
    def bureau_events(self) -> BureauEventLedger: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Write everything, events included, atomically; raise `Collision` on a lost race."""
        ...

    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...

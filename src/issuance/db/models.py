"""Storage rows. These are not the domain objects and not the D1 wire shapes (see STYLE.md, 6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class IssuerRow(Base):
    """An issuer and its validated configuration document (camelCase JSON, as loaded)."""

    __tablename__ = "issuers"

    issuer_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]]
    config_version: Mapped[int] = mapped_column(Integer)
    loaded_at: Mapped[datetime]


class PersonalizationCentreRow(Base):
    __tablename__ = "personalization_centres"

    centre_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    config: Mapped[dict[str, Any]]


class ApiClientRow(Base):
    """Credentials of an issuer backend; the secret is kept only as a hash."""

    __tablename__ = "api_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("issuers.issuer_id"), index=True)
    secret_hash: Mapped[str | None] = mapped_column(String(100))
    public_keys: Mapped[dict[str, Any]]
    certificate_fingerprint: Mapped[str | None] = mapped_column(String(64))  # mTLS, SHA-256 hex


class OperatorRow(Base):
    """A bureau operator; the secret is kept only as a hash."""

    __tablename__ = "operators"

    operator_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(100))


class SandboxClockRow(Base):
    """The sandbox clock: how far it runs ahead of the real one (one row)."""

    __tablename__ = "sandbox_clock"

    clock_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset_seconds: Mapped[float]


class SandboxScenarioRow(Base):
    """The path the simulator makes a card follow, and how far along the detour it is."""

    __tablename__ = "sandbox_scenarios"

    issuer_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    card_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    scenario: Mapped[str] = mapped_column(String(32))
    stage: Mapped[int] = mapped_column(Integer, default=0)


class CardRow(Base):
    """One card of one issuer; holds the per-card event sequence counter.

    `last_txid` is the change-feed `txid` of the card's latest event (see db/feed.py).
    """

    __tablename__ = "cards"

    issuer_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    card_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    last_txid: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class OrderRow(Base):
    """A PRODUCE operation: one production order of one card.

    `active_card_id` equals `card_id` while the operation is PENDING and is NULL afterwards; its
    unique constraint makes "one order in progress per card" hold on both databases under
    concurrency (NULLs never collide). `request_fingerprint` is a keyed hash of the request with
    its decrypted content, so an idempotent retry can be recognised even though the JWE of a
    retry differs byte for byte.
    """

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("issuer_id", "issuer_request_id"),
        UniqueConstraint("issuer_id", "active_card_id"),
        Index("ix_orders_issuer_card", "issuer_id", "card_id"),
        Index("ix_orders_updated_at", "updated_at"),
        Index("ix_orders_purgeable_since", "purgeable_since"),
        # Console search and queues over a million orders (keyset pages: the key ends each one).
        Index("ix_orders_card_id", "card_id"),
        Index("ix_orders_issuer_request_id", "issuer_request_id"),
        Index("ix_orders_consumer_id", "consumer_id"),
        Index("ix_orders_status_updated", "production_status", "updated_at", "operation_id"),
        Index("ix_orders_due_date", "due_date", "operation_id"),
        Index("ix_orders_site_status", "production_site", "production_status"),
        Index("ix_orders_start_time", "start_time"),
        Index("ix_orders_container", "issuer_id", "container_group_id"),  # a container's manifest
        Index("ix_orders_production_batch", "production_batch", "card_id"),
    )

    operation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("issuers.issuer_id"))
    card_id: Mapped[str] = mapped_column(String(48))
    active_card_id: Mapped[str | None] = mapped_column(String(48))
    issuer_request_id: Mapped[str | None] = mapped_column(String(64))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the JWE as an order file carried it (imports only): see services/importing.py
    encrypted_data_digest: Mapped[str | None] = mapped_column(String(64))
    consumer_id: Mapped[str | None] = mapped_column(String(64))
    card_product_id: Mapped[str | None] = mapped_column(String(64))
    input_file_name: Mapped[str | None] = mapped_column(String(255))  # the issuer's order file
    production_batch: Mapped[str | None] = mapped_column(String(255))  # the machines' batch file
    status: Mapped[str] = mapped_column(String(32))
    production_status: Mapped[str] = mapped_column(String(32))  # ix_orders_status_updated
    start_time: Mapped[datetime]
    end_time: Mapped[datetime | None]
    due_date: Mapped[datetime | None]
    cancellable_until: Mapped[datetime | None]
    sla_standing: Mapped[str | None] = mapped_column(String(16))
    hold: Mapped[str] = mapped_column(String(16), default="NONE", server_default="NONE")
    shipment: Mapped[dict[str, Any] | None]
    shipment_status: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[str | None] = mapped_column(String(32))
    materials: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    production_site: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(String(255))
    request: Mapped[dict[str, Any]]  # the order without its encrypted part
    sensitive_data: Mapped[bytes | None] = mapped_column(LargeBinary)  # envelope (envelope.py)
    sensitive_key_id: Mapped[str | None] = mapped_column(String(64))  # the wrapping master key
    purgeable_since: Mapped[datetime | None]  # the data stopped being needed (domain/retention)
    sensitive_data_purged_at: Mapped[datetime | None]
    container_group_id: Mapped[str | None] = mapped_column(String(64))  # BULK: its container
    container: Mapped[dict[str, Any] | None]  # the card's view of it (domain ContainerRef)
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer)  # optimistic lock: a lost update fails

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it once)


class ContainerRow(Base):
    """A BULK first-level container (D1 `shipment.groupId`) and its tracking.

    Its manifest is not stored here: it is the orders whose `container_group_id` names it.
    """

    __tablename__ = "containers"
    __table_args__ = (
        Index("ix_containers_issuer_status", "issuer_id", "status"),
        Index("ix_containers_issuer_order", "issuer_id", "order_id"),
    )

    issuer_id: Mapped[str] = mapped_column(ForeignKey("issuers.issuer_id"), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str | None] = mapped_column(String(64))  # second-level container
    status: Mapped[str] = mapped_column(String(24))
    carrier: Mapped[str | None] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    tracking_url: Mapped[str | None] = mapped_column(String(2048))
    message: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    shipped_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer)  # optimistic lock: a lost update fails

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it once)


class StockLevelRow(Base):
    """Units of a stock item left at its issuer's personalization centre."""

    __tablename__ = "stock_levels"

    issuer_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    stock_item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)


class EventRow(Base):
    """The event journal (transactional outbox): one row per change of an order.

    `payload` is the full operation object after the change, so any single event lets a
    receiver converge. `sequence` counts per card, from 1, without gaps. `txid` orders the
    change feed in commit order on PostgreSQL (0 on SQLite and for older rows; see db/feed.py).
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("issuer_id", "card_id", "sequence"),
        Index("ix_events_feed", "issuer_id", "txid", "event_id"),
    )

    event_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    issuer_id: Mapped[str] = mapped_column(String(10))  # ix_events_feed leads with it
    card_id: Mapped[str] = mapped_column(String(48))
    operation_id: Mapped[str] = mapped_column(ForeignKey("orders.operation_id"), index=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    txid: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class DeliveryRow(Base):
    """One event to deliver to one endpoint: the unit workers claim, retry and settle.

    Rows are written with their event, in the same transaction (the transactional outbox).
    `claimed_until` is a lease: a worker that dies leaves its claims to expire and be taken again.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        # claims walk it in order, oldest due first, and stop at their limit
        Index("ix_deliveries_due", "status", "next_attempt_at", "delivery_id"),
        Index("ix_deliveries_card", "endpoint_id", "issuer_id", "card_id", "event_id"),
    )

    delivery_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.event_id"), index=True)
    event: Mapped[EventRow] = relationship(lazy="raise")
    issuer_id: Mapped[str] = mapped_column(String(10))
    endpoint_id: Mapped[str] = mapped_column(String(64))
    card_id: Mapped[str] = mapped_column(String(48))
    status: Mapped[str] = mapped_column(String(16))  # PENDING, DELIVERED, FAILED, GONE
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    first_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(255))


class DeliveryAttemptRow(Base):
    """The log of every attempt: when, how long, what came back (never the body)."""

    __tablename__ = "delivery_attempts"

    attempt_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.delivery_id"), index=True)
    attempted_at: Mapped[datetime]
    latency_ms: Mapped[float]
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(255))


class EndpointStateRow(Base):
    """An endpoint that asked us to stop (410 Gone): nothing is sent to it until re-enabled."""

    __tablename__ = "endpoint_states"

    issuer_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    disabled_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(255))


class EndpointHealthRow(Base):
    """An endpoint's current failure streak (domain/endpoint_health.py decides what it means)."""

    __tablename__ = "endpoint_health"

    issuer_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None]
    warned_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]


class EndpointEventRow(Base):
    """What happened to an endpoint (warned, disabled, recovered, enabled): for operators."""

    __tablename__ = "endpoint_events"

    endpoint_event_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    issuer_id: Mapped[str] = mapped_column(String(10))
    endpoint_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(255))


class SandboxChaosRow(Base):
    """Sandbox chaos settings of one endpoint (domain/chaos.py)."""

    __tablename__ = "sandbox_chaos"

    issuer_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    duplicate: Mapped[float]
    delay_seconds: Mapped[float]
    reorder: Mapped[bool]


class AuditRow(Base):
    """The audit trail (domain/audit.py). Append-only: no code path updates or deletes a row,
    and triggers refuse it on both databases (migration 0007)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_card", "issuer_id", "card_id", "audit_id"),
        Index("ix_audit_log_actor", "actor_id", "audit_id"),
    )

    audit_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_issuer_id: Mapped[str | None] = mapped_column(String(10))
    action: Mapped[str] = mapped_column(String(64))
    issuer_id: Mapped[str | None] = mapped_column(String(10))
    card_id: Mapped[str | None] = mapped_column(String(48))
    operation_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(255))


class BureauEventRow(Base):
    """A production-report line applied to an order: what makes re-importing a report a no-op.

    One row per (operation, event, time the bureau says it happened); a line whose key is here
    was applied before and comes back ALREADY_APPLIED (services/production_reports.py).
    """

    __tablename__ = "bureau_events"
    __table_args__ = (UniqueConstraint("operation_id", "event", "occurred_at"),)

    bureau_event_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(ForeignKey("orders.operation_id"))
    event: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    report: Mapped[str | None] = mapped_column(String(255))  # the report's file name


class BatchReplyRow(Base):
    """The answer of a batch order that created orders, kept so that a retry of the whole
    request is answered the same (services/batch_ordering.py)."""

    __tablename__ = "batch_replies"

    issuer_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    request_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    lines: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class OrderImportRow(Base):
    """An uploaded order file and its import's progress (services/order_uploads.py)."""

    __tablename__ = "order_imports"
    __table_args__ = (Index("ix_order_imports_status", "status", "created_at"),)

    import_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer_id: Mapped[str] = mapped_column(String(10), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    file_format: Mapped[str] = mapped_column(String(8))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    actor_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    lines: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    replayed: Mapped[int] = mapped_column(Integer)
    refused: Mapped[int] = mapped_column(Integer)
    bytes_read: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(255))

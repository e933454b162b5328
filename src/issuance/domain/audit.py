"""The audit trail: who did what to which order, and when. Append-only, never sensitive.

An entry names its actor (an issuer's API client, a bureau operator, or the platform itself),
a stable action name, the order it concerns and a short structured detail (an action's error
code, a batch file name, a count): never free text a caller typed, never card data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ActorKind(StrEnum):
    ISSUER = "ISSUER"  # an issuer backend, by its API client id
    OPERATOR = "OPERATOR"  # a bureau operator, by operator id (API or CLI)
    SYSTEM = "SYSTEM"  # the platform: worker schedules, the sandbox simulator, retention


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    actor_id: str
    issuer_id: str | None = None  # the issuer an issuer client belongs to


PLATFORM = Actor(ActorKind.SYSTEM, "platform")
SIMULATOR = Actor(ActorKind.SYSTEM, "simulator")


class AuditAction(StrEnum):
    """Stable names; workflow actions are recorded as `order.<action>` (`order.cancel`…)."""

    ORDER_PLACED = "order.placed"
    ORDER_REPLAYED = "order.replayed"  # an idempotent retry answered with the original
    RETURN_DECIDED = "order.return_decision"
    STOCK_REPLENISHED = "stock.replenish"
    SENSITIVE_DATA_PURGED = "sensitive_data.purged"
    SENSITIVE_DATA_EXPORTED = "sensitive_data.exported"  # decrypted for a production batch
    NOTIFICATIONS_REPLAYED = "notifications.replay"
    NOTIFICATIONS_RECOVERED = "notifications.recover"
    ENDPOINT_ENABLED = "endpoint.enable"
    SANDBOX_CLOCK_ADVANCED = "sandbox.clock_advance"
    SANDBOX_SCENARIO_SET = "sandbox.scenario"
    SANDBOX_TICK = "sandbox.simulator_tick"
    SANDBOX_CHAOS_SET = "sandbox.chaos"
    JWE_KEY_ROTATED = "keys.rotate_jwe"
    MASTER_KEY_ROTATED = "keys.rotate_master"
    DATA_KEYS_REWRAPPED = "keys.rewrap"
    MASTER_KEY_RETIRED = "keys.retire_master"


def order_action(action: str) -> str:
    """`cancel` → `order.cancel`: the name a workflow action is audited under."""
    return f"order.{action}"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: Actor
    action: str
    issuer_id: str | None = None
    card_id: str | None = None
    operation_id: str | None = None
    detail: str | None = None  # structured and short: `decision=DESTROY`, `count=12`
    audit_id: int | None = None  # set once stored

"""The production batch export: the one place sensitive data is ever decrypted.

A personalization centre receives, per production batch (`inputFileName`), each card's order
and its decrypted data. Every decryption is audited. Orders whose data was purged are listed
without it, never silently left out. (Issue 7 builds the full bureau file format on this.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from issuance.domain.audit import Actor, AuditAction
from issuance.domain.errors import NotFound
from issuance.security.envelope import MasterKeys, open_envelope
from issuance.services.audit import audit_order
from issuance.services.intake import sealing_context
from issuance.services.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class PersonalizationRecord:
    """One card of a batch: its order as accepted, and its card data (None once purged)."""

    card_id: str
    operation_id: str
    request: dict[str, Any]
    card_data: dict[str, Any] | None


def export_batch_personalization(
    batch_id: str,
    *,
    uow: UnitOfWork,
    masters: MasterKeys,
    clock: Callable[[], datetime],
    actor: Actor,
) -> list[PersonalizationRecord]:
    """Every card of the production batch `batch_id` (its `inputFileName`), decrypted."""
    with uow:
        sealed = uow.sensitive.sealed_in_batch(batch_id)
        if not sealed:
            raise NotFound(f"no production batch {batch_id}", field="batchId", code="BATCH_UNKNOWN")
        now, records = clock(), []
        for item in sealed:
            order, card_data = item.order, None
            if item.sealed is not None:
                context = sealing_context(order.issuer_id, order.card_id)
                plaintext = open_envelope(
                    item.sealed, masters=masters, context=context, legacy_key_id=item.key_id
                )
                card_data = json.loads(plaintext)
                audit_order(
                    uow,
                    actor,
                    AuditAction.SENSITIVE_DATA_EXPORTED,
                    order,
                    at=now,
                    detail=f"batch={batch_id}",
                )
            request = uow.orders.request_of(order.operation_id)
            records.append(
                PersonalizationRecord(order.card_id, order.operation_id, request, card_data)
            )
        uow.commit()
        return records

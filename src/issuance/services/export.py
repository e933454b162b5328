"""The production batch export: the one place sensitive data is ever decrypted.

A personalization centre receives, per production batch (`details.productionBatch`), a file of
each card's personalization with its card data encrypted for the centre's own key
(docs/production-files.md). The data is opened from its envelope here and sealed again for the
centre in the same call: it leaves this module only as a JWE. Every decryption is audited.

Cards withdrawn from the batch since it was made (cancelled, or failed with DATA_EXCEPTION) are
left out and named in the header. A batch holding a card whose data was purged (it was made
already, or its retention ran out) is refused as a whole (`SENSITIVE_DATA_PURGED`): a machine
file missing a card's data would look complete and be wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from joserfc.jwk import ECKey

from issuance.domain.audit import Actor, AuditAction
from issuance.domain.centres import PersonalizationCentre
from issuance.domain.errors import Conflict, NotFound
from issuance.domain.operations import iso_utc
from issuance.domain.orders import Order
from issuance.domain.statuses import ProductionStatus
from issuance.security.centre_keys import ALGORITHM, ENCRYPTION, encrypt_for_centre
from issuance.security.envelope import MasterKeys, UnreadableSealedData, open_envelope
from issuance.services.audit import audit_order
from issuance.services.intake import sealing_context
from issuance.services.unit_of_work import SealedOrder, UnitOfWork

FILE_FORMAT = "issuance.production-batch"
FILE_VERSION = 1
WITHDRAWN = frozenset({ProductionStatus.CARD_PROD_CANCELED, ProductionStatus.DATA_EXCEPTION})
PERSONALIZATION_FIELDS = (
    "distributionChannel",
    "consumerId",
    "cardProductId",
    "issuerRequestId",
    "services",
    "cardDesign",
    "paymentApplication",
    "shipment",
    "cardCarrierConfig",
    "packagingConfig",
    "oldCardId",
)
"""What of the accepted order goes to the machines in clear: a list, so a field added to the
order later stays out of the file until someone decides it belongs there."""

CentreKey = Callable[[PersonalizationCentre], ECKey]


@dataclass(frozen=True, slots=True)
class PersonalizationRecord:
    """One card of a batch: its order as accepted, and its card data in clear."""

    card_id: str
    operation_id: str
    request: dict[str, Any]
    card_data: dict[str, Any]
    order: Order = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BatchFile:
    """A production batch file: the header record, then one record per card (JSON objects)."""

    header: dict[str, Any]
    cards: list[dict[str, Any]]

    def lines(self) -> list[str]:
        """The file's JSON Lines: header, cards, then a trailer repeating the count."""
        trailer = {"record": "trailer", "count": len(self.cards)}
        records = [self.header, *self.cards, trailer]
        return [json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records]


def export_batch_personalization(
    batch_id: str,
    *,
    uow: UnitOfWork,
    masters: MasterKeys,
    clock: Callable[[], datetime],
    actor: Actor,
) -> list[PersonalizationRecord]:
    """Every card still to make in production batch `batch_id`, decrypted (in-process only)."""
    with uow:
        records, _withdrawn = _decrypt_batch(batch_id, uow, masters, clock(), actor, detail="")
        uow.commit()
        return records


def export_batch_file(
    batch_id: str,
    *,
    uow: UnitOfWork,
    masters: MasterKeys,
    centre_key: CentreKey,
    clock: Callable[[], datetime],
    actor: Actor,
) -> BatchFile:
    """The machines' file for `batch_id`, card data encrypted for the batch's centre."""
    with uow:
        now = clock()
        sealed = _batch(batch_id, uow)
        first = sealed[0].order
        centre = uow.config.centre(first.production_site or "")
        if centre is None:
            raise Conflict(
                f"batch {batch_id} names no configured centre ({first.production_site})",
                field="productionSite",
                code="CENTRE_UNKNOWN",
            )
        key = centre_key(centre)
        records, withdrawn = _decrypt_batch(
            batch_id, uow, masters, now, actor, detail=f";file;kid={key.kid}"
        )
        cards = [_card_record(number, r, key) for number, r in enumerate(records, start=1)]
        header = {
            "record": "header",
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "batch": batch_id,
            "centreId": centre.centre_id,
            "cardProductId": first.card_product_id,
            "priority": first.priority or "STANDARD",
            "count": len(cards),
            "createdAt": iso_utc(now),
            "keyId": key.kid,
            "alg": ALGORITHM,
            "enc": ENCRYPTION,
            "withdrawnCardIds": withdrawn,
        }
        uow.commit()
        return BatchFile(header, cards)


def _batch(batch_id: str, uow: UnitOfWork) -> list[SealedOrder]:
    sealed = uow.sensitive.sealed_in_batch(batch_id)
    if not sealed:
        raise NotFound(f"no production batch {batch_id}", field="batch", code="BATCH_UNKNOWN")
    return sealed


def _decrypt_batch(
    batch_id: str,
    uow: UnitOfWork,
    masters: MasterKeys,
    now: datetime,
    actor: Actor,
    *,
    detail: str,
) -> tuple[list[PersonalizationRecord], list[str]]:
    """The cards to make, decrypted and audited, and the card ids withdrawn from the batch."""
    records, withdrawn = [], []
    for item in _batch(batch_id, uow):
        order = item.order
        if order.production_status in WITHDRAWN:
            withdrawn.append(order.card_id)
            continue
        if item.sealed is None:
            raise Conflict(
                f"card {order.card_id} of batch {batch_id} no longer holds its card data "
                f"(destroyed at {order.production_status}); the batch cannot be exported again",
                field="cardId",
                code="SENSITIVE_DATA_PURGED",
            )
        context = sealing_context(order.issuer_id, order.card_id)
        try:
            plaintext = open_envelope(
                item.sealed, masters=masters, context=context, legacy_key_id=item.key_id
            )
        except UnreadableSealedData:
            raise Conflict(
                f"the card data of card {order.card_id} does not open with the master keys "
                "held (a retired key?)",
                field="cardId",
                code="SENSITIVE_DATA_UNREADABLE",
            ) from None
        audit_order(
            uow,
            actor,
            AuditAction.SENSITIVE_DATA_EXPORTED,
            order,
            at=now,
            detail=f"batch={batch_id}{detail}",
        )
        request = uow.orders.request_of(order.operation_id)
        records.append(
            PersonalizationRecord(
                order.card_id, order.operation_id, request, json.loads(plaintext), order
            )
        )
    return records, withdrawn


def _card_record(number: int, record: PersonalizationRecord, key: ECKey) -> dict[str, Any]:
    order = record.order
    clear = {k: record.request[k] for k in PERSONALIZATION_FIELDS if k in record.request}
    return {
        "record": "card",
        "sequence": number,
        "issuerId": order.issuer_id,
        "cardId": record.card_id,
        "operationId": record.operation_id,
        **clear,
        "encryptedCardData": encrypt_for_centre(
            json.dumps(record.card_data, separators=(",", ":")).encode(), key
        ),
    }

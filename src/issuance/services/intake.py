"""From a D1 card order to a `PlaceOrder` command: channel, decryption, fingerprint, sealing.

Used by the HTTP API for single and batch orders (and by file imports later), so every entry
point applies the same rules. The decrypted fields live only inside this function call: they are
checked, fingerprinted with a keyed hash and sealed (envelope encryption: a data key of their
own, wrapped by the master key), then dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import KeySet
from pydantic import ValidationError

from issuance.contract.orders import CardItem, CardOrderFields, DistributionChannel
from issuance.contract.sensitive import SensitiveCardData
from issuance.domain.errors import DomainError, InvalidRequest, Problem
from issuance.domain.programs import ShipmentType
from issuance.domain.validation import OrderSpec
from issuance.security.envelope import MasterKeys, seal_envelope
from issuance.security.field_encryption import decrypt_fields
from issuance.services.batch_ordering import Item
from issuance.services.ordering import PlaceOrder


@dataclass(frozen=True)
class IntakeKeys:
    """The keys intake needs: to decrypt JWE, to fingerprint, to seal at rest."""

    jwe: KeySet
    fingerprint: bytes
    masters: MasterKeys


def sealing_context(issuer_id: str, card_id: str) -> str:
    """Associated data binding a sealed blob to its card."""
    return f"order:{issuer_id}:{card_id}"


def _sensitive(fields: CardOrderFields, keys: IntakeKeys) -> SensitiveCardData:
    content = decrypt_fields(fields.encrypted_data, keys.jwe)
    try:
        return SensitiveCardData.model_validate(content)
    except ValidationError as error:
        problems = [  # one code for the class, the field for the culprit, never the value
            Problem(
                "INVALID_JWE_CONTENT",
                "encryptedData." + ".".join(str(p) for p in e["loc"]),
                str(e["msg"]).removeprefix("Value error, "),
            )
            for e in error.errors(include_input=False, include_url=False)
        ]
        raise InvalidRequest.from_problems(problems) from None


def _spec(fields: CardOrderFields, sensitive: SensitiveCardData) -> OrderSpec:
    shipment = fields.shipment
    return OrderSpec(
        card_product_id=fields.card_product_id,
        issuance=fields.services.issuance.value,
        priority=fields.services.priority,
        delivery=fields.services.delivery,
        card_carrier=fields.services.card_carrier,
        carrier_language=fields.card_carrier_config.language
        if fields.card_carrier_config
        else None,
        packaging=fields.services.packaging,
        inserts=tuple(fields.packaging_config.inserts) if fields.packaging_config else (),
        shipment_type=ShipmentType(shipment.type.value) if shipment else None,
        delivery_country=shipment.delivery_address.country_code if shipment else None,
        has_individual_address=bool(shipment and shipment.individual_address),
        has_bulk_container=bool(shipment and shipment.group_id),
        card_image=fields.card_design.card_image if fields.card_design else None,
        has_payment_application=_has_payment_application(fields),
        pan=sensitive.pan,
        cardholder_named=sensitive.name is not None,
    )


def _has_payment_application(fields: CardOrderFields) -> bool:
    app = fields.payment_application
    return bool(
        app
        and app.config
        and app.oda_key_index is not None
        and app.derivation_key_index is not None
    )


def _fingerprint(
    card_id: str, request: dict[str, Any], sensitive: SensitiveCardData, key: bytes
) -> str:
    canonical = json.dumps(
        {
            "cardId": card_id,
            "request": request,
            "sensitive": sensitive.model_dump(mode="json", exclude_none=True),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def to_command(
    fields: CardOrderFields,
    *,
    issuer_id: str,
    card_id: str,
    keys: IntakeKeys,
    input_file_name: str | None = None,
    encrypted_data_digest: str | None = None,
) -> PlaceOrder:
    """Check the channel, decrypt and validate the sensitive part, and build the command."""
    if fields.distribution_channel is not DistributionChannel.THALES:
        raise InvalidRequest(
            f"{fields.distribution_channel.value} is not served here; only THALES (central issuance)",
            field="distributionChannel",
            code="DISTRIBUTION_CHANNEL_NOT_SUPPORTED",
        )
    if fields.shipment is None:
        raise InvalidRequest(
            "is required for distributionChannel THALES", field="shipment", code="FIELD_MISSING"
        )
    sensitive = _sensitive(fields, keys)
    request = fields.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude={"encrypted_data", "card_id"}
    )
    plaintext = sensitive.model_dump_json(by_alias=True, exclude_none=True).encode()
    return PlaceOrder(
        issuer_id=issuer_id,
        card_id=card_id,
        issuer_request_id=fields.issuer_request_id,
        consumer_id=fields.consumer_id,
        spec=_spec(fields, sensitive),
        request=request,
        fingerprint=_fingerprint(card_id, request, sensitive, keys.fingerprint),
        sealed=(
            keys.masters.wrapping_key_id,
            seal_envelope(
                plaintext, masters=keys.masters, context=sealing_context(issuer_id, card_id)
            ),
        ),
        input_file_name=input_file_name,
        encrypted_data_digest=encrypted_data_digest,
    )


def to_item(
    raw: Any,
    *,
    issuer_id: str,
    keys: IntakeKeys,
    schema_problems: Callable[[ValidationError], list[Problem]],
) -> Item:
    """One card of a batch: its command, or every problem that refuses it before placing."""
    card_id = raw.get("cardId") if isinstance(raw, dict) else None
    shown = card_id if isinstance(card_id, str) else ""
    try:
        card = CardItem.model_validate(raw)
        command = to_command(card, issuer_id=issuer_id, card_id=card.card_id, keys=keys)
    except ValidationError as error:
        return Item(shown, None, tuple(schema_problems(error)), raw)
    except DomainError as error:
        return Item(shown, None, error.all_problems, raw)
    return Item(shown, command)

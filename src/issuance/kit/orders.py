"""Order bodies as the client sends them: validated by the shared contract, keyed, encrypted.

Each logical order gets its `issuerRequestId` here, once, before the first attempt; the retries
of that call send these exact bytes, so the platform answers a retry with the original
operation (`Idempotent-Replayed: true`) instead of creating a second card.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from joserfc.jwk import ECKey
from pydantic import BaseModel, ValidationError

from issuance.contract.orders import CardOrderFields
from issuance.contract.sensitive import SensitiveCardData, unmasked_hex_id
from issuance.kit.errors import InvalidOrder
from issuance.security.field_encryption import encrypt_fields

OrderT = TypeVar("OrderT", bound=CardOrderFields)
ModelT = TypeVar("ModelT", bound=BaseModel)
CardData = SensitiveCardData | Mapping[str, Any]


def new_issuer_request_id() -> str:
    """32 hex characters: inside D1's `^[A-Za-z0-9_-]{1,64}$`, unique without coordination,
    and shown as they are in logs (none that the PAN masking would alter)."""
    return unmasked_hex_id()


def _path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _validated(model: type[ModelT], data: Any, prefix: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        raise InvalidOrder(prefix + _path(tuple(first["loc"])), first["msg"]) from None


def encrypt_card_data(card_data: CardData, key: ECKey, *, prefix: str = "") -> str:
    """The compact JWE of `encryptedData`, after checking the fields (errors never echo them)."""
    clear = (
        card_data
        if isinstance(card_data, SensitiveCardData)
        else _validated(SensitiveCardData, dict(card_data), prefix + "encryptedData.")
    )
    return encrypt_fields(clear.model_dump(mode="json", by_alias=True, exclude_none=True), key)


def prepare(
    model: type[OrderT],
    order: CardOrderFields | Mapping[str, Any],
    *,
    encrypted_data: str | None = None,
    prefix: str = "",
) -> OrderT:
    """The order as `model`, with `encryptedData` set when given and an `issuerRequestId` added
    when missing; `InvalidOrder` names the first field the contract refuses."""
    data: dict[str, Any] = (
        order.model_dump(mode="json", by_alias=True, exclude_unset=True)
        if isinstance(order, BaseModel)
        else dict(order)
    )
    if encrypted_data is not None:
        data.pop("encrypted_data", None)
        data["encryptedData"] = encrypted_data
    validated = _validated(model, data, prefix)
    if validated.issuer_request_id is None:
        validated = validated.model_copy(update={"issuer_request_id": new_issuer_request_id()})
    return validated


def wire(order: BaseModel) -> dict[str, Any]:
    """camelCase JSON with only the fields the caller set (and the ones the kit added)."""
    return order.model_dump(mode="json", by_alias=True, exclude_unset=True)

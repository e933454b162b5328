"""Identifiers and building blocks used across the D1 contract."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

ISSUER_ID_PATTERN = r"^[A-Za-z0-9_-]{10}$"
CARD_ID_PATTERN = r"^[A-Za-z0-9_-]{1,48}$"
OPERATION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CORRELATION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

CardId = Annotated[str, StringConstraints(pattern=CARD_ID_PATTERN)]
OperationId = Annotated[str, StringConstraints(pattern=OPERATION_ID_PATTERN)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class WireModel(BaseModel):
    """camelCase on the wire; unknown fields are refused with an error naming them.

    Validation errors never carry the input (`hide_input_in_errors`): a rejected PAN must not
    reach a log through the text of its error.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", hide_input_in_errors=True
    )

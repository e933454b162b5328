"""Reading the YAML configuration, and explaining its errors field by field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from issuance.domain.configuration import PlatformConfig

SANDBOX_CONFIG = Path(__file__).resolve().parent.parent / "config" / "sandbox.yaml"


def read_config(path: Path) -> PlatformConfig:
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict):
        raise ValueError("the file must hold a YAML mapping at the top level")
    return PlatformConfig.model_validate(document)


def format_errors(error: Exception) -> list[str]:
    """`issuers[0].cardProducts[1].binRanges: Field required` — one line per problem."""
    if not isinstance(error, ValidationError):
        return [str(error)]
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{path}: {message}" if path else message)
    return lines

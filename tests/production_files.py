"""The personalization centre's side of a batch file, for tests only: read it, decrypt it.

The platform never decrypts a batch file and has no command that prints card data; this is
what the centre's machines do with their private key (here the sandbox's generated one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from joserfc import jwe
from joserfc.jwk import ECKey

from issuance.security.centre_keys import private_path


def centre_private_key(keys_dir: Path, centre_id: str) -> ECKey:
    return ECKey.import_key(json.loads(private_path(keys_dir, centre_id).read_text()))


def read_batch_file(
    content: bytes, key: ECKey
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(header, card records each with its `cardData` decrypted, trailer)."""
    header, *cards, trailer = [json.loads(line) for line in content.decode().splitlines()]
    for card in cards:
        token = jwe.decrypt_compact(card["encryptedCardData"], key)
        assert token.protected["alg"] == "ECDH-ES+A256KW"
        assert token.protected["enc"] == "A256GCM"
        card["cardData"] = json.loads(token.plaintext or b"")
    return header, cards, trailer

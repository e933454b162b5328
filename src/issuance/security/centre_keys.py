"""The personalization centres' public keys, which production batch files are encrypted for.

A centre's key comes from its configuration (`fileEncryptionKey`: a public JWK, or the path of
a file holding one), else from `centres/<centreId>.public.json` in the keys directory. In
sandbox mode a missing key pair is generated there: the public half for the platform, the
private half (`centres/<centreId>.private.json`) standing in for the centre's machines, so
`make run` can export a batch and a test can decrypt it. The platform itself never reads a
centre's private key.

Card data is encrypted as a compact JWE, ECDH-ES+A256KW with A256GCM on P-256: a fresh
ephemeral key per card, a random content key wrapped for the centre.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from issuance.domain.centres import PersonalizationCentre
from issuance.domain.errors import Conflict
from issuance.security.keys import new_kid, write_private

ALGORITHM = "ECDH-ES+A256KW"
ENCRYPTION = "A256GCM"
CENTRES_DIR = "centres"


def public_path(keys_dir: Path, centre_id: str) -> Path:
    return keys_dir / CENTRES_DIR / f"{centre_id}.public.json"


def private_path(keys_dir: Path, centre_id: str) -> Path:
    return keys_dir / CENTRES_DIR / f"{centre_id}.private.json"


def _missing(centre_id: str, why: str) -> Conflict:
    return Conflict(
        f"no usable file encryption key for centre {centre_id}: {why}",
        field="fileEncryptionKey",
        code="CENTRE_KEY_MISSING",
    )


def _public(document: Any, centre_id: str) -> ECKey:
    try:
        key = ECKey.import_key(document)
    except (JoseError, ValueError, TypeError, KeyError):
        raise _missing(centre_id, "it is not an EC JWK") from None
    if key.is_private or key.get("crv") != "P-256":
        raise _missing(centre_id, "it must be a public P-256 key")
    return key


def centre_public_key(centre: PersonalizationCentre, *, keys_dir: Path, generate: bool) -> ECKey:
    """The key to encrypt `centre`'s batch files for; `generate` (sandbox) makes a missing one."""
    configured = centre.file_encryption_key
    if isinstance(configured, dict):
        return _public(configured, centre.centre_id)
    path = Path(configured) if configured else public_path(keys_dir, centre.centre_id)
    if not path.exists() and generate and configured is None:
        _generate(keys_dir, centre.centre_id)
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        raise _missing(centre.centre_id, f"{path} cannot be read") from None
    return _public(document, centre.centre_id)


def _generate(keys_dir: Path, centre_id: str) -> None:
    (keys_dir / CENTRES_DIR).mkdir(parents=True, exist_ok=True)
    pair = ECKey.generate_key("P-256", parameters={"kid": f"{centre_id}-{new_kid()}"})
    write_private(
        private_path(keys_dir, centre_id), json.dumps(pair.as_dict(private=True)), replace=False
    )
    private = ECKey.import_key(json.loads(private_path(keys_dir, centre_id).read_text()))
    public = json.dumps(private.as_dict(private=False))  # the half of the pair that won a race
    write_private(public_path(keys_dir, centre_id), public, replace=False)


def encrypt_for_centre(plaintext: bytes, key: ECKey) -> str:
    """A compact JWE of `plaintext` that only the holder of the centre's private key opens."""
    header = {"alg": ALGORITHM, "enc": ENCRYPTION, "kid": key.kid, "cty": "application/json"}
    return jwe.encrypt_compact(header, plaintext, key)


def centre_keys(keys_dir: Path, *, generate: bool) -> Callable[[PersonalizationCentre], ECKey]:
    """`centre_public_key` bound to a process's keys directory (its composition root calls it)."""
    return lambda centre: centre_public_key(centre, keys_dir=keys_dir, generate=generate)

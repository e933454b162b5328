"""The platform's key ring, read from a directory (`ISSUANCE_KEYS_DIR`, default `./var/keys`).

    jwe-keys.json    private EC P-256 JWKs (each with a `kid`) that decrypt `encryptedData`;
                     their public halves are served as a JWKS so issuers can encrypt
    token-key.json   the HMAC key that signs the platform's access tokens
    data-keys.json   AES-256 keys that seal sensitive data at rest; the first one seals,
                     every one listed can still open what it sealed

In sandbox mode missing files are generated; otherwise a missing file stops the process, since
the platform never invents production key material.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet, OctKey

JWE_KEYS = "jwe-keys.json"
TOKEN_KEY = "token-key.json"  # noqa: S105 (a name, not a secret)
DATA_KEYS = "data-keys.json"


class MissingKeys(RuntimeError):
    """A key file is missing and the platform is not in sandbox mode."""


@dataclass(frozen=True)
class KeyRing:
    jwe_keys: KeySet
    token_key: OctKey
    data_keys: dict[str, bytes]  # kid -> 32-byte AES key; insertion order: the sealing key first

    @property
    def fingerprint_key(self) -> bytes:
        """Key of the request fingerprints (idempotency), derived from the token key."""
        return hmac.new(
            self.token_key.raw_value, b"issuance/request-fingerprint", hashlib.sha256
        ).digest()

    @property
    def sealing_key_id(self) -> str:
        return next(iter(self.data_keys))

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS issuers use to encrypt `encryptedData` for us (public halves only)."""
        return {
            "keys": [key.as_dict(private=False, use="enc", alg="ECDH-ES") for key in self.jwe_keys]
        }


def load_key_ring(directory: Path, *, generate: bool) -> KeyRing:
    """Read the key ring; with `generate`, first create whatever is missing."""
    if generate:
        _generate_missing(directory)
    try:
        jwe = json.loads((directory / JWE_KEYS).read_text())
        token = json.loads((directory / TOKEN_KEY).read_text())
        data = json.loads((directory / DATA_KEYS).read_text())
    except FileNotFoundError as missing:
        raise MissingKeys(
            f"key file {missing.filename} not found (generate keys or run with --sandbox)"
        ) from None
    return KeyRing(
        jwe_keys=KeySet.import_key_set(jwe),
        token_key=OctKey.import_key(token),
        data_keys={k["kid"]: base64.urlsafe_b64decode(k["key"]) for k in data["keys"]},
    )


def _new_kid() -> str:
    return secrets.token_urlsafe(12)


def _generate_missing(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {
        JWE_KEYS: lambda: KeySet(
            [ECKey.generate_key("P-256", parameters={"kid": _new_kid()})]
        ).as_dict(private=True),
        TOKEN_KEY: lambda: OctKey.generate_key(256, parameters={"kid": _new_kid()}).as_dict(
            private=True
        ),
        DATA_KEYS: lambda: {
            "keys": [{"kid": _new_kid(), "key": base64.urlsafe_b64encode(os.urandom(32)).decode()}]
        },
    }
    for name, make in files.items():
        path = directory / name
        if not path.exists():
            _write_private(path, json.dumps(make(), indent=2))


def _write_private(path: Path, text: str) -> None:
    """Write a key file readable by its owner only, atomically (two processes may race here)."""
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    try:
        os.link(temporary, path)  # fails if another process won the race: keep theirs
    except FileExistsError:
        pass
    finally:
        temporary.unlink()

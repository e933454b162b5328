"""The platform's key ring, read from a directory (`ISSUANCE_KEYS_DIR`, default `./var/keys`).

    jwe-keys.json     private EC P-256 JWKs (each with a `kid`) that decrypt `encryptedData`,
                      newest first; their public halves are served as a JWKS so issuers can
                      encrypt. Two are active during a rotation (`issuance keys rotate-jwe`).
    token-key.json    the HMAC key that signs the platform's access tokens
    master-keys.json  AES-256 master keys wrapping the per-order data keys (envelope.py); the
                      first wraps, every one listed unwraps (`issuance keys rotate-master`).
                      `ISSUANCE_MASTER_KEY` (base64url keys, comma-separated, first wraps) takes
                      precedence, for keys injected by a secret manager.
    data-keys.json    (older installations) keys that sealed data directly: they still open
                      it, and wrap new data keys until `issuance keys rotate-master` adds a
                      master key, so an upgrade needs no new key file

In sandbox mode missing files are generated; otherwise a missing file stops the process, since
the platform never invents production key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import structlog
from joserfc.jwk import ECKey, KeySet, OctKey

from issuance.security.envelope import DATA_KEY_BYTES, MasterKeys

JWE_KEYS = "jwe-keys.json"
TOKEN_KEY = "token-key.json"  # noqa: S105 (a name, not a secret)
MASTER_KEYS = "master-keys.json"
LEGACY_DATA_KEYS = "data-keys.json"
KEY_FILES = (JWE_KEYS, TOKEN_KEY, MASTER_KEYS, LEGACY_DATA_KEYS)
MASTER_FILES = (MASTER_KEYS, LEGACY_DATA_KEYS)
RELOAD_INTERVAL = 1.0  # seconds between two looks at the key files' modification times
log = structlog.get_logger("issuance.keys")


class MissingKeys(RuntimeError):
    """A key file is missing and the platform is not in sandbox mode."""


@dataclass(frozen=True)
class KeyRing:
    jwe_keys: KeySet  # newest first: issuers encrypt for the first, both decrypt
    token_key: OctKey
    master_keys: MasterKeys

    @cached_property
    def fingerprint_key(self) -> bytes:
        """Key of the request fingerprints (idempotency), derived from the token key."""
        return hmac.new(
            self.token_key.raw_value, b"issuance/request-fingerprint", hashlib.sha256
        ).digest()

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS issuers use to encrypt `encryptedData` for us (public halves, newest first)."""
        return {
            "keys": [key.as_dict(private=False, use="enc", alg="ECDH-ES") for key in self.jwe_keys]
        }


def new_kid() -> str:
    """16 URL-safe characters, never a leading '-': operators pass ids on the command line
    (`issuance keys retire-master KID`), where one would read as an option (1 id in 64)."""
    while (kid := secrets.token_urlsafe(12)).startswith("-"):
        pass
    return kid


def new_master_key() -> dict[str, str]:
    return {"kid": new_kid(), "key": base64.urlsafe_b64encode(os.urandom(DATA_KEY_BYTES)).decode()}


def env_master_keys(value: str) -> dict[str, bytes]:
    """`ISSUANCE_MASTER_KEY`: base64url 32-byte keys, comma-separated; ids derived from them."""
    keys = {}
    for text in filter(None, (part.strip() for part in value.split(","))):
        try:
            key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != DATA_KEY_BYTES:
            raise ValueError("ISSUANCE_MASTER_KEY must hold base64url-encoded 32-byte keys")
        keys["env-" + hashlib.sha256(key).hexdigest()[:16]] = key
    return keys


def _file_keys(path: Path) -> dict[str, bytes]:
    if not path.exists():
        return {}
    document = json.loads(path.read_text())
    return {k["kid"]: base64.urlsafe_b64decode(k["key"]) for k in document["keys"]}


def load_key_ring(directory: Path, *, generate: bool, master_key: str | None = None) -> KeyRing:
    """Read the key ring; with `generate`, first create whatever is missing."""
    if generate:
        _generate_missing(directory, master_from_env=bool(master_key))
    try:
        jwe = json.loads((directory / JWE_KEYS).read_text())
        token = json.loads((directory / TOKEN_KEY).read_text())
        if not master_key and not any((directory / n).exists() for n in MASTER_FILES):
            raise FileNotFoundError(2, "missing", str(directory / MASTER_KEYS))
    except FileNotFoundError as missing:
        raise MissingKeys(
            f"key file {missing.filename} not found (generate keys or run with --sandbox)"
        ) from None
    masters = {
        **env_master_keys(master_key or ""),
        **_file_keys(directory / MASTER_KEYS),
        **_file_keys(directory / LEGACY_DATA_KEYS),
    }
    return KeyRing(
        jwe_keys=KeySet.import_key_set(jwe),
        token_key=OctKey.import_key(token),
        master_keys=MasterKeys(masters),
    )


def _generate_missing(directory: Path, *, master_from_env: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Callable[[], Any]] = {
        JWE_KEYS: lambda: KeySet(
            [ECKey.generate_key("P-256", parameters={"kid": new_kid()})]
        ).as_dict(private=True),
        TOKEN_KEY: lambda: OctKey.generate_key(256, parameters={"kid": new_kid()}).as_dict(
            private=True
        ),
    }
    if not master_from_env:
        files[MASTER_KEYS] = lambda: {"keys": [new_master_key()]}
    for name, make in files.items():
        path = directory / name
        if not path.exists():
            write_private(path, json.dumps(make(), indent=2), replace=False)


def write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write a key file readable by its owner only, atomically.

    Without `replace`, an existing file wins (two processes generating at once keep one set);
    with it, readers see the old file or the new one, never half of either.
    """
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    try:
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if another process won the race: keep theirs
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)


class KeySource:
    """The key ring of a long-running process, re-read when a key file changes.

    A rotation run by `issuance keys …` in another process is seen within `RELOAD_INTERVAL`:
    the new JWE key is published and accepted, new orders are wrapped with the new master key,
    without a restart.
    """

    def __init__(
        self,
        directory: Path,
        *,
        generate: bool,
        master_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory, self._master_key, self._clock = directory, master_key, clock
        self._ring = load_key_ring(directory, generate=generate, master_key=master_key)
        self._stamp, self._checked = self._files_stamp(), clock()

    def _files_stamp(self) -> tuple[tuple[str, int, int, int], ...]:
        """Name, inode, size and modification time of each file: a rotation replaces the file
        (a new inode), so it is seen even within the file system's time resolution."""
        stamps = []
        for name in KEY_FILES:
            try:
                info = (self.directory / name).stat()
            except FileNotFoundError:
                continue
            stamps.append((name, info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(stamps)

    def ring(self) -> KeyRing:
        now = self._clock()
        if now - self._checked >= RELOAD_INTERVAL:
            self._checked = now
            stamp = self._files_stamp()
            if stamp != self._stamp:
                self._reload(stamp)
        return self._ring

    def _reload(self, stamp: tuple[tuple[str, int, int, int], ...]) -> None:
        try:
            self._ring = load_key_ring(self.directory, generate=False, master_key=self._master_key)
        except (MissingKeys, ValueError, KeyError) as error:  # keep serving with the keys we have
            log.warning("key files changed but could not be read", error=type(error).__name__)
            return
        self._stamp = stamp

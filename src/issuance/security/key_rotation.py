"""Rotating the key files: what `issuance keys …` does on disk.

JWE keys: a new key goes first (issuers encrypt for the first key of the JWKS) and the previous
one stays active, so orders encrypted by an issuer that has not fetched the JWKS again still
decrypt. Only two are active: a third rotation retires the oldest.

Master keys: a new key goes first and wraps every new data key; older ones stay to unwrap until
the data keys they wrap have been re-wrapped (db/rewrap.py), and are retired only then.

Every change writes the whole file atomically under a lock, so running processes (which re-read
changed files, keys.KeySource) see the old file or the new one.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey

from issuance.security.keys import (
    JWE_KEYS,
    LEGACY_DATA_KEYS,
    MASTER_KEYS,
    env_master_keys,
    new_kid,
    new_master_key,
    write_private,
)

ACTIVE_JWE_KEYS = 2  # the current key and the previous one


class RotationRefused(Exception):
    """The rotation would lose data or is not possible with this configuration."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as `issuance keys list` shows it: never its material."""

    kind: str  # JWE, MASTER
    kid: str
    role: str  # JWE: current | previous; MASTER: wrapping | unwrap-only
    source: str  # the file, or ISSUANCE_MASTER_KEY


@dataclass(frozen=True, slots=True)
class JweRotation:
    new_kid: str
    active: tuple[str, ...]
    retired: tuple[str, ...]


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One rotation at a time per key directory."""
    with (directory / ".rotation.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise RotationRefused(f"{path} does not exist")
    keys: list[dict[str, Any]] = json.loads(path.read_text())["keys"]
    return keys


def _write(path: Path, keys: list[dict[str, Any]]) -> None:
    write_private(path, json.dumps({"keys": keys}, indent=2), replace=True)


def rotate_jwe(directory: Path) -> JweRotation:
    """A new JWE key first; the previous one stays active; older ones are retired."""
    with _locked(directory):
        keys = _read(directory / JWE_KEYS)
        new = ECKey.generate_key("P-256", parameters={"kid": new_kid()}).as_dict(private=True)
        kept, retired = [new, *keys][:ACTIVE_JWE_KEYS], keys[ACTIVE_JWE_KEYS - 1 :]
        _write(directory / JWE_KEYS, kept)
    return JweRotation(
        new_kid=str(new["kid"]),
        active=tuple(str(k["kid"]) for k in kept),
        retired=tuple(str(k["kid"]) for k in retired),
    )


def rotate_master(directory: Path, *, master_key: str | None = None) -> str:
    """A new master key first in `master-keys.json`; the old ones stay to unwrap. Its id."""
    if master_key:
        raise RotationRefused(
            "the master key comes from ISSUANCE_MASTER_KEY: put the new key first there "
            "(comma-separated, the old one after it), then run `issuance keys rewrap`"
        )
    with _locked(directory):
        path = directory / MASTER_KEYS
        keys = _read(path) if path.exists() else []
        new = new_master_key()
        _write(path, [new, *keys])
    return new["kid"]


def retire_master(directory: Path, kid: str, *, still_wrapped: int) -> None:
    """Drop an unwrap-only master key; refused while a data key is still wrapped by it."""
    if still_wrapped:
        raise RotationRefused(
            f"{still_wrapped} data key(s) are still wrapped by {kid}: run `issuance keys rewrap`"
        )
    with _locked(directory):
        files = {
            name: _read(directory / name) if (directory / name).exists() else []
            for name in (MASTER_KEYS, LEGACY_DATA_KEYS)
        }
        in_order = [key["kid"] for keys in files.values() for key in keys]
        if in_order[:1] == [kid]:
            raise RotationRefused(f"{kid} wraps new data keys: rotate it out first")
        for name, keys in files.items():
            if kid in (key["kid"] for key in keys):
                _write(directory / name, [key for key in keys if key["kid"] != kid])
                return
    raise RotationRefused(f"no master key {kid} in {directory}")


def describe(directory: Path, *, master_key: str | None = None) -> list[KeyInfo]:
    """Every JWE and master key with its role, newest first."""
    infos = [
        KeyInfo("JWE", str(key["kid"]), "current" if index == 0 else "previous", JWE_KEYS)
        for index, key in enumerate(_read(directory / JWE_KEYS))
    ]
    masters = [(kid, "ISSUANCE_MASTER_KEY") for kid in env_master_keys(master_key or "")]
    for name in (MASTER_KEYS, LEGACY_DATA_KEYS):
        if (directory / name).exists():
            masters += [(str(k["kid"]), name) for k in _read(directory / name)]
    infos += [
        KeyInfo("MASTER", kid, "wrapping" if index == 0 else "unwrap-only", source)
        for index, (kid, source) in enumerate(masters)
    ]
    return infos

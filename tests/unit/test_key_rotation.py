"""Key rotation on disk: JWE keys (two active), master keys (old ones unwrap until retired),
ISSUANCE_MASTER_KEY, and a running process seeing the new files without a restart."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from issuance.security.envelope import open_envelope, seal_envelope
from issuance.security.field_encryption import decrypt_fields, encrypt_fields
from issuance.security.key_rotation import (
    RotationRefused,
    describe,
    retire_master,
    rotate_jwe,
    rotate_master,
)
from issuance.security.keys import (
    JWE_KEYS,
    LEGACY_DATA_KEYS,
    MASTER_KEYS,
    RELOAD_INTERVAL,
    KeySource,
    MissingKeys,
    env_master_keys,
    load_key_ring,
)

FIELDS = {"pan": "4539910012345676", "exp": "2911"}


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def test_a_jwe_rotation_puts_a_new_key_first_and_keeps_the_previous_one(tmp_path: Path) -> None:
    first = load_key_ring(tmp_path, generate=True)
    old_public = first.public_jwks()["keys"][0]
    token_for_old = encrypt_fields(FIELDS, old_public)

    rotation = rotate_jwe(tmp_path)

    ring = load_key_ring(tmp_path, generate=False)
    kids = [key["kid"] for key in ring.public_jwks()["keys"]]
    assert kids == [rotation.new_kid, old_public["kid"]] == list(rotation.active)
    assert rotation.retired == ()
    assert decrypt_fields(token_for_old, ring.jwe_keys) == FIELDS
    assert decrypt_fields(encrypt_fields(FIELDS, ring.public_jwks()["keys"][0]), ring.jwe_keys)
    assert stat.S_IMODE((tmp_path / JWE_KEYS).stat().st_mode) == 0o600


def test_only_two_jwe_keys_stay_active(tmp_path: Path) -> None:
    oldest = load_key_ring(tmp_path, generate=True).public_jwks()["keys"][0]
    token = encrypt_fields(FIELDS, oldest)
    second = rotate_jwe(tmp_path)

    third = rotate_jwe(tmp_path)

    assert third.active == (third.new_kid, second.new_kid)
    assert third.retired == (oldest["kid"],)
    ring = load_key_ring(tmp_path, generate=False)
    assert len(list(ring.jwe_keys)) == 2
    with pytest.raises(Exception, match="unknown key id") as refused:
        decrypt_fields(token, ring.jwe_keys)
    assert getattr(refused.value, "code", None) == "UNKNOWN_JWE_KEY"


def test_a_master_rotation_wraps_with_the_new_key_and_still_opens_the_old(tmp_path: Path) -> None:
    before = load_key_ring(tmp_path, generate=True).master_keys
    old_blob = seal_envelope(b"card", masters=before, context="c")

    new_kid = rotate_master(tmp_path)

    after = load_key_ring(tmp_path, generate=False).master_keys
    assert after.wrapping_key_id == new_kid != before.wrapping_key_id
    assert open_envelope(old_blob, masters=after, context="c") == b"card"
    roles = {(i.kid, i.role) for i in describe(tmp_path) if i.kind == "MASTER"}
    assert roles == {(new_kid, "wrapping"), (before.wrapping_key_id, "unwrap-only")}


def test_retiring_a_master_key_is_refused_while_it_wraps_data(tmp_path: Path) -> None:
    old = load_key_ring(tmp_path, generate=True).master_keys.wrapping_key_id
    new = rotate_master(tmp_path)

    with pytest.raises(RotationRefused, match="still wrapped"):
        retire_master(tmp_path, old, still_wrapped=3)
    with pytest.raises(RotationRefused, match="wraps new data keys"):
        retire_master(tmp_path, new, still_wrapped=0)
    with pytest.raises(RotationRefused, match="no master key"):
        retire_master(tmp_path, "nope", still_wrapped=0)

    retire_master(tmp_path, old, still_wrapped=0)

    assert list(load_key_ring(tmp_path, generate=False).master_keys.keys) == [new]


def test_the_master_key_may_come_from_the_environment_alone(tmp_path: Path) -> None:
    key = os.urandom(32)
    ring = load_key_ring(tmp_path, generate=True, master_key=_b64(key))

    assert not (tmp_path / MASTER_KEYS).exists()  # nothing generated: the environment has it
    [(kid, material)] = ring.master_keys.keys.items()
    assert kid.startswith("env-")
    assert material == key
    assert load_key_ring(tmp_path, generate=False, master_key=_b64(key)).master_keys == (
        ring.master_keys
    )
    with pytest.raises(MissingKeys, match=MASTER_KEYS):
        load_key_ring(tmp_path, generate=False)


def test_environment_keys_come_first_and_the_file_keys_still_unwrap(tmp_path: Path) -> None:
    filed = load_key_ring(tmp_path, generate=True).master_keys
    blob = seal_envelope(b"card", masters=filed, context="c")
    new, old = os.urandom(32), os.urandom(32)

    ring = load_key_ring(tmp_path, generate=False, master_key=f"{_b64(new)},{_b64(old)}")

    assert list(ring.master_keys.keys.values())[:2] == [new, old]
    assert open_envelope(blob, masters=ring.master_keys, context="c") == b"card"
    with pytest.raises(RotationRefused, match="ISSUANCE_MASTER_KEY"):
        rotate_master(tmp_path, master_key=_b64(new))


@pytest.mark.parametrize("value", ["short", _b64(b"x" * 31), "!!!"])
def test_a_malformed_environment_master_key_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="32-byte"):
        env_master_keys(value)


def test_keys_of_an_older_installation_still_open_its_data(tmp_path: Path) -> None:
    load_key_ring(tmp_path, generate=True)
    legacy = os.urandom(32)
    document = {"keys": [{"kid": "legacy-1", "key": _b64(legacy)}]}
    (tmp_path / LEGACY_DATA_KEYS).write_text(json.dumps(document))

    ring = load_key_ring(tmp_path, generate=False)

    assert ring.master_keys.keys["legacy-1"] == legacy
    assert ring.master_keys.wrapping_key_id != "legacy-1"


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_running_process_sees_a_rotation_within_the_reload_interval(tmp_path: Path) -> None:
    clock = Ticks()
    source = KeySource(tmp_path, generate=True, clock=clock)
    before = source.ring()

    rotation = rotate_jwe(tmp_path)
    new_master = rotate_master(tmp_path)

    assert source.ring() is before  # not looked at again yet
    clock.now += RELOAD_INTERVAL
    after = source.ring()
    assert after.public_jwks()["keys"][0]["kid"] == rotation.new_kid
    assert after.master_keys.wrapping_key_id == new_master
    assert after.token_key.raw_value == before.token_key.raw_value


def test_an_unreadable_key_file_keeps_the_keys_in_use(tmp_path: Path) -> None:
    clock = Ticks()
    source = KeySource(tmp_path, generate=True, clock=clock)
    before = source.ring()

    (tmp_path / JWE_KEYS).write_text("{ half written")
    clock.now += RELOAD_INTERVAL

    assert source.ring() is before


def test_an_older_installation_without_master_keys_wraps_with_its_data_key(
    tmp_path: Path,
) -> None:
    load_key_ring(tmp_path, generate=True)
    (tmp_path / MASTER_KEYS).unlink()
    legacy = {"keys": [{"kid": "legacy-1", "key": _b64(os.urandom(32))}]}
    (tmp_path / LEGACY_DATA_KEYS).write_text(json.dumps(legacy))

    before = load_key_ring(tmp_path, generate=False).master_keys  # starts without a new file
    new_kid = rotate_master(tmp_path)

    assert before.wrapping_key_id == "legacy-1"
    after = load_key_ring(tmp_path, generate=False).master_keys
    assert list(after.keys) == [new_kid, "legacy-1"]
    retire_master(tmp_path, "legacy-1", still_wrapped=0)
    assert list(load_key_ring(tmp_path, generate=False).master_keys.keys) == [new_kid]

"""The key ring on disk: generated in sandbox mode, owner-only files, stable across loads,
re-read by a running process when a rotation changes a file."""

from __future__ import annotations

import json
import secrets
import stat
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from issuance.security import keys
from issuance.security.envelope import open_envelope, seal_envelope
from issuance.security.field_encryption import decrypt_fields, encrypt_fields
from issuance.security.keys import (
    JWE_KEYS,
    MASTER_KEYS,
    TOKEN_KEY,
    MissingKeys,
    load_key_ring,
)

KEY_FILES = (JWE_KEYS, TOKEN_KEY, MASTER_KEYS)


def test_generate_creates_the_three_key_files_readable_by_their_owner_only(tmp_path: Path) -> None:
    load_key_ring(tmp_path, generate=True)

    for name in KEY_FILES:
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name}: {oct(mode)}"


def test_generate_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    load_key_ring(tmp_path, generate=True)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(KEY_FILES)


def test_generate_creates_a_missing_directory(tmp_path: Path) -> None:
    directory = tmp_path / "var" / "keys"

    load_key_ring(directory, generate=True)

    assert (directory / JWE_KEYS).exists()


def test_a_generated_ring_has_one_key_of_each_kind(tmp_path: Path) -> None:
    ring = load_key_ring(tmp_path, generate=True)

    [jwe_key] = list(ring.jwe_keys)
    assert isinstance(jwe_key, ECKey)
    assert jwe_key.as_dict(private=False)["crv"] == "P-256"
    assert jwe_key.kid
    assert ring.token_key.kid
    assert len(ring.token_key.raw_value) == 32
    assert [len(key) for key in ring.master_keys.keys.values()] == [32]
    assert ring.master_keys.wrapping_key_id == next(iter(ring.master_keys.keys))


def test_loading_twice_gives_the_same_keys(tmp_path: Path) -> None:
    first = load_key_ring(tmp_path, generate=True)
    second = load_key_ring(tmp_path, generate=True)
    third = load_key_ring(tmp_path, generate=False)

    for ring in (second, third):
        assert ring.public_jwks() == first.public_jwks()
        assert ring.token_key.raw_value == first.token_key.raw_value
        assert ring.master_keys == first.master_keys
        assert ring.fingerprint_key == first.fingerprint_key


def test_what_one_load_encrypts_and_seals_the_next_load_opens(tmp_path: Path) -> None:
    first = load_key_ring(tmp_path, generate=True)
    token = encrypt_fields({"pan": "4539910012345676"}, first.public_jwks()["keys"][0])
    sealed = seal_envelope(b"secret", masters=first.master_keys, context="c")

    second = load_key_ring(tmp_path, generate=False)

    assert decrypt_fields(token, second.jwe_keys) == {"pan": "4539910012345676"}
    assert open_envelope(sealed, masters=second.master_keys, context="c") == b"secret"


def test_two_directories_get_different_keys(tmp_path: Path) -> None:
    one = load_key_ring(tmp_path / "one", generate=True)
    two = load_key_ring(tmp_path / "two", generate=True)

    assert one.token_key.raw_value != two.token_key.raw_value
    assert one.master_keys != two.master_keys


def test_generate_keeps_existing_files_and_adds_only_missing_ones(tmp_path: Path) -> None:
    first = load_key_ring(tmp_path, generate=True)
    (tmp_path / MASTER_KEYS).unlink()

    second = load_key_ring(tmp_path, generate=True)

    assert second.public_jwks() == first.public_jwks()
    assert second.token_key.raw_value == first.token_key.raw_value
    assert second.master_keys != first.master_keys


def test_without_generate_an_empty_directory_is_missing_keys(tmp_path: Path) -> None:
    with pytest.raises(MissingKeys, match=JWE_KEYS):
        load_key_ring(tmp_path, generate=False)

    assert list(tmp_path.iterdir()) == []


def test_without_generate_a_missing_directory_is_missing_keys(tmp_path: Path) -> None:
    with pytest.raises(MissingKeys):
        load_key_ring(tmp_path / "nowhere", generate=False)

    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("missing", KEY_FILES)
def test_without_generate_any_one_missing_file_is_missing_keys(
    tmp_path: Path, missing: str
) -> None:
    load_key_ring(tmp_path, generate=True)
    (tmp_path / missing).unlink()

    with pytest.raises(MissingKeys, match=missing):
        load_key_ring(tmp_path, generate=False)


def test_the_public_jwks_has_no_private_part(tmp_path: Path) -> None:
    ring = load_key_ring(tmp_path, generate=True)

    jwks = ring.public_jwks()

    [key] = jwks["keys"]
    assert "d" not in key
    assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("EC", "P-256", "enc", "ECDH-ES")
    assert key["kid"] == next(iter(ring.jwe_keys)).kid
    assert '"d"' not in json.dumps(jwks)


def test_the_private_key_file_does_hold_the_private_part(tmp_path: Path) -> None:
    load_key_ring(tmp_path, generate=True)

    [key] = json.loads((tmp_path / JWE_KEYS).read_text())["keys"]

    assert "d" in key


def test_the_fingerprint_key_differs_from_the_token_key(tmp_path: Path) -> None:
    ring = load_key_ring(tmp_path, generate=True)

    assert len(ring.fingerprint_key) == 32
    assert ring.fingerprint_key != ring.token_key.raw_value


def test_a_new_key_id_never_reads_as_a_command_line_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn = iter(["-leading-dash-00", "_fine-key-id-001"])  # the first would be an option
    monkeypatch.setattr(secrets, "token_urlsafe", lambda _: next(drawn))
    assert keys.new_kid() == "_fine-key-id-001"

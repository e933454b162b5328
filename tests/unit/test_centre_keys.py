"""The centres' file encryption keys: configured inline or as a file, generated in the sandbox."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwe
from joserfc.jwk import ECKey
from pydantic import ValidationError

from issuance.domain.centres import PersonalizationCentre
from issuance.domain.errors import Conflict
from issuance.security.centre_keys import (
    centre_public_key,
    encrypt_for_centre,
    private_path,
    public_path,
)


def _centre(**key: Any) -> PersonalizationCentre:
    return PersonalizationCentre.model_validate(
        {"centreId": "PC-TEST", "name": "Test", "timeZone": "Europe/Paris", **key}
    )


def test_an_inline_public_jwk_is_used_and_a_private_one_refused() -> None:
    pair = ECKey.generate_key("P-256", parameters={"kid": "centre-1"})
    centre = _centre(fileEncryptionKey=pair.as_dict(private=False))

    key = centre_public_key(centre, keys_dir=Path("/nonexistent"), generate=False)
    token = encrypt_for_centre(b'{"pan": "4539910000000002"}', key)

    assert jwe.decrypt_compact(token, pair).plaintext == b'{"pan": "4539910000000002"}'
    with pytest.raises(ValidationError, match="public key"):
        _centre(fileEncryptionKey=pair.as_dict(private=True))
    with pytest.raises(ValidationError, match="P-256"):
        _centre(fileEncryptionKey={"kty": "RSA", "n": "x", "e": "AQAB"})


def test_a_key_file_path_is_read_and_a_missing_key_refused(tmp_path: Path) -> None:
    pair = ECKey.generate_key("P-256", parameters={"kid": "centre-2"})
    path = tmp_path / "centre.json"
    path.write_text(json.dumps(pair.as_dict(private=False)))

    key = centre_public_key(_centre(fileEncryptionKey=str(path)), keys_dir=tmp_path, generate=True)

    assert key.kid == "centre-2"
    with pytest.raises(Conflict) as missing:
        centre_public_key(_centre(), keys_dir=tmp_path, generate=False)
    assert (missing.value.code, missing.value.field) == ("CENTRE_KEY_MISSING", "fileEncryptionKey")
    assert not public_path(tmp_path, "PC-TEST").exists()  # only the sandbox invents keys


def test_the_sandbox_generates_a_pair_once(tmp_path: Path) -> None:
    first = centre_public_key(_centre(), keys_dir=tmp_path, generate=True)
    again = centre_public_key(_centre(), keys_dir=tmp_path, generate=True)

    assert first.kid == again.kid
    assert not first.is_private
    private = ECKey.import_key(json.loads(private_path(tmp_path, "PC-TEST").read_text()))
    assert private.is_private
    assert stat.S_IMODE(private_path(tmp_path, "PC-TEST").stat().st_mode) == 0o600
    token = encrypt_for_centre(b"data", first)
    assert jwe.decrypt_compact(token, private).plaintext == b"data"

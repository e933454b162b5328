"""Unit-test fixtures: key material generated per test, never read from disk or the network."""

from __future__ import annotations

import atexit
import shutil
import tempfile

import pytest
from hypothesis import configuration
from joserfc.jwk import ECKey, KeySet, OctKey

from tests.unit.builders import ISSUER_KID, JWE_KID, TOKEN_KID

# Hypothesis keeps caches (constants, unicode tables) in `.hypothesis/` of the working directory;
# unit tests write nothing outside temporary directories, so point it at one before any test runs.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="issuance-unit-hypothesis-")
configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)


@pytest.fixture
def jwe_key() -> ECKey:
    """The platform's private EC P-256 key that `encryptedData` is encrypted for."""
    return ECKey.generate_key("P-256", parameters={"kid": JWE_KID})


@pytest.fixture
def jwe_keys(jwe_key: ECKey) -> KeySet:
    return KeySet([jwe_key])


@pytest.fixture
def token_key() -> OctKey:
    return OctKey.generate_key(256, parameters={"kid": TOKEN_KID})


@pytest.fixture
def issuer_key() -> ECKey:
    """An issuer backend's EC P-256 signing key for D1 JWT-bearer assertions."""
    return ECKey.generate_key("P-256", parameters={"kid": ISSUER_KID})

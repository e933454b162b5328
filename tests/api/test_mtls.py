"""Mutual TLS: a real uvicorn over TLS, certificates made here, a client bound to its certificate.

The token endpoint gives a token to a client bound by `certificateFingerprint` only over a
connection that presented that very certificate; `--require-client-cert` refuses connections
without one at the handshake; behind a proxy the fingerprint may come from a trusted header.
"""

from __future__ import annotations

import hashlib
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from issuance.api.app import create_app
from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.cli.tls import TlsOptions
from issuance.platform import Platform
from issuance.services.configuration import load_config
from issuance.settings import Settings
from tests.factories import DEMO, OTHER, SECRETS


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    bound: tuple[Path, Path]  # the certificate demobank01 is bound to, and its key
    other: tuple[Path, Path]  # a valid certificate of the same CA, bound to nobody
    bound_fingerprint: str


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(
    subject: str, issuer_key: ec.EllipticCurvePrivateKey | None, issuer: str, *, server: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
    )
    if issuer_key is None:  # the CA itself
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    elif server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False
        )
    return builder.sign(issuer_key or key, hashes.SHA256()), key


def _write(
    directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca_cert, ca_key = _issue("issuance test CA", None, "issuance test CA", server=False)
    ca, _ = _write(tmp_path, "ca", ca_cert, ca_key)
    server_cert, server_key = _write(
        tmp_path, "server", *_issue("127.0.0.1", ca_key, "issuance test CA", server=True)
    )
    bound_cert, bound_key = _issue("demobank01", ca_key, "issuance test CA", server=False)
    bound = _write(tmp_path, "bound", bound_cert, bound_key)
    other = _write(tmp_path, "other", *_issue("intruder", ca_key, "issuance test CA", server=False))
    fingerprint = hashlib.sha256(bound_cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return Pki(ca, server_cert, server_key, bound, other, fingerprint)


def _bind_demobank(platform: Platform, fingerprint: str) -> None:
    sandbox = read_config(SANDBOX_CONFIG)
    demo = sandbox.issuers[0]
    clients = tuple(  # validated, as a configuration file is
        type(c).model_validate(
            {**c.model_dump(by_alias=True), "certificateFingerprint": fingerprint}
        )
        for c in demo.clients
    )
    issuers = (demo.model_copy(update={"clients": clients}), *sandbox.issuers[1:])
    load_config(sandbox.model_copy(update={"issuers": issuers}), uow=platform.uow())


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


@contextmanager
def _serving(settings: Settings, platform: Platform, **options: object) -> Iterator[str]:
    """The app behind a real uvicorn on a free loopback port; its base URL."""
    config = uvicorn.Config(
        create_app(settings, platform=platform),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        **options,  # type: ignore[arg-type]
    )
    instance = _Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline, "the server did not start"
        assert thread.is_alive(), "the server stopped"
        time.sleep(0.01)
    port = instance.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if "ssl_certfile" in options else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


def _tls_client(base_url: str, pki: Pki, cert: tuple[Path, Path] | None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return httpx.Client(base_url=base_url, verify=context, timeout=10)


def _token(http: httpx.Client, issuer_id: str = DEMO, **headers: str) -> httpx.Response:
    client_id, secret = SECRETS[issuer_id]
    return http.post(
        "/authz/v1/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        headers=headers,
    )


def _refused(answer: httpx.Response, code: str) -> None:
    assert (answer.status_code, answer.json()["errorCode"]) == (401, code), answer.text
    assert answer.json()["field"] == "clientCertificate"


def test_a_bound_client_gets_a_token_only_with_its_own_certificate(
    settings: Settings, platform: Platform, pki: Pki
) -> None:
    _bind_demobank(platform, pki.bound_fingerprint)
    tls = TlsOptions(pki.server_cert, pki.server_key, pki.ca, require_client_cert=False)

    with _serving(settings, platform, **tls.uvicorn_options()) as base_url:
        with _tls_client(base_url, pki, pki.bound) as http:
            answer = _token(http)
            assert answer.status_code == 200, answer.text
            bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
            jwks = http.get("/.well-known/jwks.json", headers=bearer)
            assert jwks.status_code == 200
        with _tls_client(base_url, pki, pki.other) as http:
            _refused(_token(http), "CLIENT_CERTIFICATE_MISMATCH")
            assert _token(http, OTHER).status_code == 200  # an unbound client: as before
        with _tls_client(base_url, pki, None) as http:
            _refused(_token(http), "CLIENT_CERTIFICATE_REQUIRED")
            assert _token(http, OTHER).status_code == 200


def test_with_require_client_cert_a_connection_without_one_is_refused(
    settings: Settings, platform: Platform, pki: Pki
) -> None:
    tls = TlsOptions(pki.server_cert, pki.server_key, pki.ca, require_client_cert=True)

    with _serving(settings, platform, **tls.uvicorn_options()) as base_url:
        with _tls_client(base_url, pki, pki.other) as http:
            assert _token(http, OTHER).status_code == 200
        with _tls_client(base_url, pki, None) as http, pytest.raises(httpx.TransportError):
            _token(http, OTHER)


def test_behind_a_proxy_the_fingerprint_comes_from_the_configured_header(
    settings: Settings, platform: Platform, pki: Pki
) -> None:
    _bind_demobank(platform, pki.bound_fingerprint.upper())  # any common spelling is accepted
    proxied = settings.model_copy(update={"client_certificate_header": "x-client-cert-sha256"})
    spaced = ":".join(
        pki.bound_fingerprint[i : i + 2] for i in range(0, len(pki.bound_fingerprint), 2)
    )

    behind_proxy = Platform.build(proxied)  # the same database, read as the proxy's platform
    try:
        with _serving(proxied, behind_proxy) as base_url, httpx.Client(base_url=base_url) as http:
            answer = _token(http, **{"x-client-cert-sha256": spaced})
            assert answer.status_code == 200, answer.text
            _refused(
                _token(http, **{"x-client-cert-sha256": "ab" * 32}), "CLIENT_CERTIFICATE_MISMATCH"
            )
            _refused(_token(http), "CLIENT_CERTIFICATE_REQUIRED")
    finally:
        behind_proxy.close()


def test_requiring_client_certificates_needs_a_ca_to_verify_them(pki: Pki) -> None:
    with pytest.raises(ValueError, match="ssl-ca-certs"):
        TlsOptions(
            pki.server_cert, pki.server_key, None, require_client_cert=True
        ).uvicorn_options()
    assert TlsOptions(pki.server_cert).uvicorn_options()["ssl_cert_reqs"] == ssl.CERT_NONE


def test_a_malformed_fingerprint_in_the_configuration_is_refused() -> None:
    sandbox = read_config(SANDBOX_CONFIG)
    client = sandbox.issuers[0].clients[0]
    with pytest.raises(ValueError, match="certificateFingerprint"):
        type(client).model_validate(
            {**client.model_dump(by_alias=True), "certificateFingerprint": "sha1:abcd"}
        )

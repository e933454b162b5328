"""The real binary over mutual TLS: `issuance serve --sandbox --ssl-… --require-client-cert`."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.api.test_mtls import Pki, pki  # noqa: F401 (the certificates fixture)
from tests.e2e.test_sandbox_process import ISSUANCE, _free_port
from tests.factories import OTHER, SECRETS


def _client(base_url: str, authority: Pki, cert: tuple[Path, Path] | None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(authority.ca))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return httpx.Client(base_url=base_url, verify=context, timeout=5)


def _wait_until_up(http: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"issuance serve exited with {process.returncode}"
        try:
            if http.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("issuance serve did not answer within 60 s")


def test_serve_requires_and_verifies_client_certificates(tmp_path: Path, pki: Pki) -> None:  # noqa: F811
    port = _free_port()
    command = [
        str(ISSUANCE),
        "serve",
        "--sandbox",
        "--port",
        str(port),
        "--ssl-certfile",
        str(pki.server_cert),
        "--ssl-keyfile",
        str(pki.server_key),
        "--ssl-ca-certs",
        str(pki.ca),
        "--require-client-cert",
    ]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ISSUANCE_")},
        "ISSUANCE_KEYS_DIR": str(tmp_path / "keys"),
        "ISSUANCE_SIMULATOR": "false",
    }
    process = subprocess.Popen(
        command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base_url = f"https://127.0.0.1:{port}"
    try:
        with _client(base_url, pki, pki.other) as http:
            _wait_until_up(http, process)
            client_id, secret = SECRETS[OTHER]
            token = http.post(
                "/authz/v1/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                },
            )
            assert token.status_code == 200, token.text
        with _client(base_url, pki, None) as http, pytest.raises(httpx.TransportError):
            http.get("/health")
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert b"Traceback" not in output, output.decode()
    assert f"https://127.0.0.1:{port}".encode() in output

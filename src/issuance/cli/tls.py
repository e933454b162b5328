"""Serving over TLS with client certificates (mutual TLS, as D1 uses).

uvicorn verifies the client certificate against `--ssl-ca-certs` but does not hand it to the
application. `ClientCertificateProtocol` is uvicorn's h11 protocol plus the ASGI TLS extension:
each request of a connection that presented a verified certificate carries it in
`scope["extensions"]["tls"]["client_cert_chain"]`, where the token endpoint checks it against
the client's `certificateFingerprint`.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class ClientCertificateProtocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der:
            self.app = _WithClientCertificate(self.app, ssl.DER_cert_to_PEM_cert(der))


class _WithClientCertificate:
    """The application, seeing this connection's client certificate in every scope."""

    def __init__(self, app: Any, pem: str) -> None:
        self.app, self.pem = app, pem

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        extensions = scope.setdefault("extensions", {})
        extensions["tls"] = {"client_cert_chain": [self.pem], "client_cert_error": None}
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class TlsOptions:
    """`issuance serve --ssl-certfile … --ssl-keyfile … [--ssl-ca-certs … --require-client-cert]`."""

    certfile: Path
    keyfile: Path | None = None
    ca_certs: Path | None = None
    require_client_cert: bool = False

    def uvicorn_options(self) -> dict[str, Any]:
        """With CA certificates, a presented client certificate is verified (required if asked)."""
        if self.require_client_cert and self.ca_certs is None:
            raise ValueError("--require-client-cert needs --ssl-ca-certs to verify them against")
        cert_reqs = ssl.CERT_NONE
        if self.ca_certs is not None:
            cert_reqs = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        return {
            "ssl_certfile": str(self.certfile),
            "ssl_keyfile": str(self.keyfile) if self.keyfile else None,
            "ssl_ca_certs": str(self.ca_certs) if self.ca_certs else None,
            "ssl_cert_reqs": cert_reqs,
            "http": ClientCertificateProtocol,
        }

"""The TLS client certificate of a request, as a SHA-256 fingerprint (hex, of the DER).

Two ways in: the ASGI TLS extension (`scope["extensions"]["tls"]["client_cert_chain"]`), which
`issuance serve --ssl-…` fills from the verified connection (cli/tls.py); or, behind a proxy that
terminates mutual TLS, a header the proxy sets (`ISSUANCE_CLIENT_CERTIFICATE_HEADER`). The header
is read only when configured, since a client could otherwise send it itself.
"""

from __future__ import annotations

import hashlib
import ssl

from fastapi import Request

from issuance.domain.parties import normalized_fingerprint


def fingerprint_of_pem(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def presented_fingerprint(request: Request, *, header: str | None) -> str | None:
    """The fingerprint of the certificate the client presented, or None without one."""
    if header is not None:
        value = request.headers.get(header)
        return normalized_fingerprint(value) if value else None
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    return fingerprint_of_pem(chain[0]) if chain else None

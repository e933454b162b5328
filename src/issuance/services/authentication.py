"""Who is calling: API clients authenticated by secret or by a D1 JWT-bearer assertion.

A client bound to a TLS client certificate (`certificateFingerprint`) must also have presented
that certificate on the connection: a stolen secret or signing key alone is not enough.
"""

from __future__ import annotations

import hmac

from issuance.domain.errors import Unauthenticated
from issuance.security.tokens import Principal, assertion_header, secret_matches, verify_assertion
from issuance.services.unit_of_work import ClientRecord, UnitOfWork


def _check_certificate(client: ClientRecord, presented: str | None) -> None:
    """`presented`: SHA-256 (hex) of the verified client certificate of the connection."""
    expected = client.certificate_fingerprint
    if expected is None:
        return
    if presented is None:
        raise Unauthenticated(
            "this client must connect with its TLS client certificate",
            field="clientCertificate",
            code="CLIENT_CERTIFICATE_REQUIRED",
        )
    if not hmac.compare_digest(presented, expected):
        raise Unauthenticated(
            "the TLS client certificate is not the one bound to this client",
            field="clientCertificate",
            code="CLIENT_CERTIFICATE_MISMATCH",
        )


def by_client_secret(
    client_id: str, secret: str, *, uow: UnitOfWork, certificate: str | None = None
) -> Principal:
    """Client credentials grant: the client id and its secret (and certificate, if bound)."""
    with uow:
        client = uow.config.client(client_id)
    if client is None or not secret_matches(secret, client.secret_hash):
        raise Unauthenticated(
            "unknown client or wrong secret", field="client_secret", code="INVALID_CLIENT"
        )
    _check_certificate(client, certificate)
    return Principal(
        issuer_id=client.issuer_id, client_id=client.client_id, operator=client.operator
    )


def by_assertion(assertion: str, *, uow: UnitOfWork, certificate: str | None = None) -> Principal:
    """D1's JWT-bearer grant: an ES256 assertion signed with a key configured for the issuer."""
    kid = assertion_header(assertion).get("kid")
    if not isinstance(kid, str):
        raise Unauthenticated(
            "the assertion header must carry a kid", field="assertion", code="INVALID_GRANT"
        )
    with uow:
        candidates = [
            (client, key)
            for client in uow.config.clients_of_key(kid)
            for key in client.public_keys
            if key.get("kid") == kid
        ]
    if not candidates:
        raise Unauthenticated(
            "no public key is configured with this kid", field="assertion", code="INVALID_GRANT"
        )
    client, key = candidates[0]
    issuer_id = verify_assertion(assertion, [key])
    if issuer_id != client.issuer_id:
        raise Unauthenticated(
            "the assertion's iss is not the key owner's issuerId",
            field="assertion",
            code="INVALID_GRANT",
        )
    _check_certificate(client, certificate)
    return Principal(issuer_id=issuer_id, client_id=client.client_id)

"""Who is calling: API clients authenticated by secret or by a D1 JWT-bearer assertion."""

from __future__ import annotations

from issuance.domain.errors import Unauthenticated
from issuance.security.tokens import Principal, assertion_header, secret_matches, verify_assertion
from issuance.services.unit_of_work import UnitOfWork


def by_client_secret(client_id: str, secret: str, *, uow: UnitOfWork) -> Principal:
    """Client credentials grant: the client id and its secret."""
    with uow:
        client = uow.config.client(client_id)
    if client is None or not secret_matches(secret, client.secret_hash):
        raise Unauthenticated(
            "unknown client or wrong secret", field="client_secret", code="INVALID_CLIENT"
        )
    return Principal(
        issuer_id=client.issuer_id, client_id=client.client_id, operator=client.operator
    )


def by_assertion(assertion: str, *, uow: UnitOfWork) -> Principal:
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
    return Principal(issuer_id=issuer_id, client_id=client.client_id)

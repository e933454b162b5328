"""Who talks to the platform, and where: API clients, operators, endpoints, addresses."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from issuance.domain.programs_base import ConfigModel, CountryCode, Identifier


class Address(ConfigModel):
    """A postal address in D1's shape."""

    company_name: str | None = None
    line1: str
    line2: str | None = None
    line3: str | None = None
    zip_code: str
    city: str
    state: str | None = None
    country_code: CountryCode


_SECRET_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def normalized_fingerprint(text: str) -> str:
    """`AB:CD:…`, `sha256:abcd…` or `abcd…` → 64 lower-case hex digits (SHA-256 of the DER)."""
    return text.strip().lower().removeprefix("sha256:").replace(":", "")


class ApiClient(ConfigModel):
    """Credentials an issuer backend uses to obtain tokens.

    `secret` (clear, sandbox only) or `secretHash` ("sha256:<hex>") serve the client-credentials
    grant; `publicKeys` (EC P-256 JWKs with a `kid`) serve D1's JWT-bearer grant. With
    `certificateFingerprint` (SHA-256 of its TLS client certificate, DER), the client gets a
    token only over a connection that presented that certificate (mutual TLS, as D1 uses).
    """

    client_id: Identifier
    secret: str | None = None
    secret_hash: str | None = None
    public_keys: tuple[dict[str, str], ...] = ()
    certificate_fingerprint: str | None = None

    @field_validator("certificate_fingerprint")
    @classmethod
    def _fingerprint_form(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _FINGERPRINT.match(normalized_fingerprint(value)):
            raise ValueError("certificateFingerprint must be a SHA-256 in hex (64 digits)")
        return normalized_fingerprint(value)

    @model_validator(mode="after")
    def _has_credentials(self) -> ApiClient:
        if self.secret is None and self.secret_hash is None and not self.public_keys:
            raise ValueError("give a secret, a secretHash or publicKeys: a client needs a way in")
        return self

    @field_validator("secret_hash")
    @classmethod
    def _hash_form(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_HASH.match(value):
            raise ValueError("secretHash must look like sha256:<64 hex digits>")
        return value


class Operator(ConfigModel):
    """A bureau operator (or operations tool) allowed to drive orders of every issuer."""

    operator_id: Identifier
    secret: str | None = None  # clear, sandbox only
    secret_hash: str | None = None  # "sha256:<hex>"

    @model_validator(mode="after")
    def _has_secret(self) -> Operator:
        if (self.secret is None) == (self.secret_hash is None):
            raise ValueError("give exactly one of secret or secretHash")
        if self.secret_hash is not None and not _SECRET_HASH.match(self.secret_hash):
            raise ValueError("secretHash must look like sha256:<64 hex digits>")
        return self


# At least 24 bytes of key (32 base64 characters), as Standard Webhooks asks.
SigningSecret = Annotated[str, StringConstraints(pattern=r"^whsec_[A-Za-z0-9+/=]{32,}$")]


class OutboundOAuth(ConfigModel):
    """The issuer's own OAuth server, when its endpoint wants a bearer token (D1's Authorization
    header on notifications): a client-credentials token is fetched, cached until shortly before
    it expires, and fetched again after a 401."""

    token_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    client_secret: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    scope: Annotated[str, StringConstraints(max_length=1024)] | None = None


class NotificationEndpoint(ConfigModel):
    """Where notifications for this issuer are sent (D1 path appended to `baseUrl`)."""

    endpoint_id: Identifier
    base_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    max_operations_per_call: int = Field(default=10, ge=1, le=1000)
    # Standard Webhooks signing secrets ("whsec_" + base64). Two during a rotation: every
    # notification is signed with each, and the receiver accepts either.
    signing_secrets: tuple[SigningSecret, ...] = Field(default=(), max_length=2)
    timeout_seconds: float = Field(default=10.0, gt=0, le=30)  # below the delivery lease (60 s)
    # An endpoint never gets sequence n+1 of a card before n is acknowledged. An issuer whose
    # receiver orders by sequence itself may opt out, for throughput: events of one card then
    # travel concurrently and may arrive in any order.
    per_card_order: bool = True
    oauth: OutboundOAuth | None = None

    @property
    def url(self) -> str:
        """`…/notifications/d1/v2/issuers/{issuerId}/cards` is added per issuer by the sender."""
        return self.base_url.rstrip("/")

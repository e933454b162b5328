"""Key material, field encryption (JWE), sealing at rest, access tokens and log redaction."""

"""issuance: a central card issuance platform that speaks the Thales D1 physical-card API."""

__version__ = "0.1.0"

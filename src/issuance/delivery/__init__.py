"""Webhook adapter: sends journal events to issuers' notification endpoints, at least once."""

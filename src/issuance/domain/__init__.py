"""The domain core: card orders, their statuses, program rules and validation. No I/O here."""

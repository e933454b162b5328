"""Command line: `issuance serve`, `migrate`, `config load/show`."""

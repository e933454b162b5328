"""The D1 wire contract as pydantic models: requests, operations and errors, field for field.

Shared by the platform's HTTP API and the issuer kit, so the two cannot drift. camelCase on the
wire, snake_case in Python. Where the D1 reference is silent on a length or a pattern, the choice
made here is listed in docs/d1-contract.md.
"""

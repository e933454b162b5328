"""Schemathesis against the platform's own OpenAPI document, over real HTTP, on both databases.

Every operation gets generated requests with a valid bearer token (an operator's for
`/operator`, DEMOBANK01's elsewhere, its own issuerId in the path) so the handlers are reached,
not only the 401 in front of them. Checked: no 5xx, a JSON content type where one is
documented, and every documented response matches its schema. (FastAPI publishes no OpenAPI
links, so there is no stateful run: the crash scenario covers order → status → notification.)
"""

from __future__ import annotations

import os

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from tests.conftest import Server
from tests.factories import DEMO, OPERATOR, SECRETS, token_headers
from tests.reliability.profile import PROFILE

EXAMPLES = int(os.environ.get("RELIABILITY_EXAMPLES", 100 if PROFILE.name == "soak" else 8))


CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


def test_no_5xx_and_every_response_matches_the_schema(server: Server, http: httpx.Client) -> None:
    issuer, operator = token_headers(http, *SECRETS[DEMO]), token_headers(http, *OPERATOR)
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            _exercise(operation, operator if operation.path.startswith("/operator/") else issuer)
        except (Exception, BaseExceptionGroup) as error:  # every operation is tried; all listed
            failures[operation.label] = str(error)[:2000]
    assert operations >= 30
    assert failures == {}, "\n\n".join(f"{label}: {text}" for label, text in failures.items())


def _exercise(operation: schemathesis.APIOperation, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        if case.path_parameters and "issuerId" in case.path_parameters:
            case.path_parameters["issuerId"] = DEMO  # reach the handler, not the 403
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    call()

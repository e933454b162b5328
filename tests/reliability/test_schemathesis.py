"""Schemathesis against the platform's own OpenAPI document, over real HTTP, on both databases.

Every operation gets generated requests with a valid bearer token (an operator's for
`/operator`, DEMOBANK01's elsewhere, its own issuerId in the path) so the handlers are reached,
not only the 401 in front of them. Checked: no 5xx, a JSON content type where one is
documented, and every documented response matches its schema.

Then a stateful run along the document's links (api/links.py): a card is ordered, and the
state machine goes on with that card's status, hold, release, cancel and return decision in
random sequences, with generated bodies, checked the same way. The order's own body is a valid
one, its card data encrypted to the platform's key: a generated body would never decrypt, so
no sequence would get past its first step.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from schemathesis.core.result import Ok

from tests.conftest import Server
from tests.factories import (
    DEMO,
    OPERATOR,
    SECRETS,
    card_data,
    encrypt,
    new_card_id,
    order_body,
    token_headers,
)
from tests.reliability.profile import PROFILE
from tests.reliability.summary import Row, record

if TYPE_CHECKING:  # the library's own names for an OpenAPI operation and its cases
    from schemathesis.specs.openapi.schemas import OpenApiCase, OpenApiOperation

EXAMPLES = int(os.environ.get("RELIABILITY_EXAMPLES", 100 if PROFILE.name == "soak" else 8))


CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]
CARD = "/banking/v1/issuers/{issuerId}/physicalCards/{cardId}"
ORDER_LABEL = f"POST {CARD}/operations:production"
STATUS_LABEL = f"GET {CARD}/productionStatus"
CARD_PATHS = r"^/banking/v1/issuers/\{issuerId\}/physicalCards/\{cardId\}/"


def test_no_5xx_and_every_response_matches_the_schema(
    server: Server, http: httpx.Client, record_property: Callable[[str, object], None]
) -> None:
    issuer, operator = token_headers(http, *SECRETS[DEMO]), token_headers(http, *OPERATOR)
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    failures: dict[str, str] = {}
    answered: Counter[tuple[str, int]] = Counter()
    operations = 0
    try:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result.err()
            operation = result.ok()
            operations += 1
            headers = operator if operation.path.startswith("/operator/") else issuer
            try:
                _exercise(operation, headers, answered)
            except (Exception, BaseExceptionGroup) as error:  # every operation tried; all listed
                failures[operation.label] = str(error)[:2000]
    finally:
        _record(record_property, server, "schemathesis", answered, f"{operations} operations")
    assert operations >= 30
    assert failures == {}, "\n\n".join(f"{label}: {text}" for label, text in failures.items())


def _record(
    record_property: Callable[[str, object], None],
    server: Server,
    name: str,
    answered: Counter[tuple[str, int]],
    what: str,
) -> None:
    """A summary row: the orders accepted, the 5xx, and every status seen."""
    statuses: Counter[int] = Counter()
    for (_, status), count in answered.items():
        statuses[status] += count
    record(
        record_property,
        Row(
            f"{name} ({server.platform.engine.dialect.name})",
            answered[(ORDER_LABEL, 202)],
            0,
            0,
            0,
            sum(n for status, n in statuses.items() if status >= 500),
            f"{what}, {statuses.total()} calls: "
            + ", ".join(f"{n}x {status}" for status, n in sorted(statuses.items())),
        ),
    )


def _exercise(
    operation: OpenApiOperation,
    headers: dict[str, str],
    answered: Counter[tuple[str, int]],
) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: OpenApiCase) -> None:
        if case.path_parameters and "issuerId" in case.path_parameters:
            case.path_parameters["issuerId"] = DEMO  # reach the handler, not the 403
        response = case.call(headers=headers, timeout=30)
        answered[(operation.label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    call()


def test_card_operations_in_random_sequences(
    server: Server, http: httpx.Client, record_property: Callable[[str, object], None]
) -> None:
    issuer = token_headers(http, *SECRETS[DEMO])
    jwks = http.get("/.well-known/jwks.json").json()
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json").include(
        path_regex=CARD_PATHS
    )
    answered: Counter[tuple[str, int]] = Counter()

    class CardSequences(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: OpenApiCase) -> None:
            case.path_parameters = {**(case.path_parameters or {}), "issuerId": DEMO}
            if case.operation.label == ORDER_LABEL:
                # A new card every time, so that replaying a sequence gets the same answers
                # (Hypothesis checks that it does): a generated cardId may repeat.
                case.path_parameters["cardId"] = new_card_id()
                case.body = order_body(encrypt(card_data(), jwks))

        def get_call_kwargs(self, _case: OpenApiCase) -> dict[str, Any]:
            return {"headers": issuer, "timeout": 30}

        def after_call(self, response: Any, case: OpenApiCase) -> None:
            answered[(case.operation.label, response.status_code)] += 1

        def validate_response(
            self, response: Any, case: OpenApiCase, *_: Any, **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)

    try:
        CardSequences.run(
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=6,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
        )
    finally:
        _record(record_property, server, "schemathesis, stateful", answered, "card sequences")
    assert answered[(ORDER_LABEL, 202)] > 0, answered
    # The links were followed: a card no order made is unknown (404), so a 200 from a card
    # operation is a call on a card the sequence had ordered.
    linked = {label for label, status in answered if label != ORDER_LABEL and status == 200}
    assert STATUS_LABEL in linked, answered
    assert len(linked) >= 2, answered

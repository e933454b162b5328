"""Simulator controls, in sandbox mode only: the clock, a simulator round, scenarios, chaos.

The same stores the sandbox API (`/sandbox/v1`) writes, so what is set here is what the
simulator and the delivery worker read.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from issuance.api.console.audit import record
from issuance.api.console.notifications import NextField
from issuance.api.console.rendering import redirect_with_notice, render
from issuance.api.console.session import PATH, CheckedForm, SignedIn
from issuance.api.deps import EndpointIdPath, IssuerIdPath, PlatformDep
from issuance.contract.common import CARD_ID_PATTERN
from issuance.db.sandbox import SqlChaosStore, SqlScenarioStore
from issuance.domain.audit import AuditAction
from issuance.domain.chaos import Chaos
from issuance.domain.errors import DomainError
from issuance.platform import Platform
from issuance.services.endpoints import configured_endpoint, configured_endpoints
from issuance.services.simulator import Scenario

router = APIRouter(prefix=f"{PATH}/sandbox", include_in_schema=False)
HOME = f"{PATH}/sandbox"
MAX_ADVANCE_SECONDS = 366 * 86_400  # as the sandbox API's ClockAdvance


def _off(request: Request, platform: Platform) -> Response | None:
    """Outside sandbox mode these controls do not exist."""
    if platform.sandbox_clock is not None:
        return None
    return redirect_with_notice(
        request, PATH, "Simulator controls exist in the sandbox only.", ok=False
    )


@router.get("")
def controls(request: Request, session: SignedIn, platform: PlatformDep) -> Response:
    if platform.sandbox_clock is None:
        return render(
            request, "missing.html", {"what": "sandbox"}, session=session, status_code=404
        )
    chaos = SqlChaosStore(platform.engine).all()
    endpoints = [
        (issuer_id, endpoint.endpoint_id, chaos.get((issuer_id, endpoint.endpoint_id), Chaos()))
        for issuer_id, endpoint in configured_endpoints(uow=platform.reader())
    ]
    with platform.reader() as uow:
        config = uow.config.current()
    context = {
        "now": platform.clock(),
        "scenarios": list(Scenario),
        "issuers": [i.issuer_id for i in (config.issuers if config else ())],
        "chaos_endpoints": endpoints,
        "step_seconds": platform.settings.simulator_step_seconds,
        "simulator_running": platform.settings.simulator_enabled,
    }
    return render(request, "sandbox.html", context, session=session)


@router.post("/clock")
def advance(
    request: Request,
    session: CheckedForm,
    platform: PlatformDep,
    seconds: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    refused = _off(request, platform)
    if refused is not None:
        return refused
    assert platform.sandbox_clock is not None
    try:
        amount = float(seconds)
    except ValueError:
        amount = 0.0
    if not 0 < amount <= MAX_ADVANCE_SECONDS:
        text = f"Seconds must be a number above 0 and at most {MAX_ADVANCE_SECONDS}."
        return redirect_with_notice(request, HOME, text, ok=False)
    now = platform.sandbox_clock.advance(amount)
    record(platform, session, AuditAction.SANDBOX_CLOCK_ADVANCED, f"seconds={amount:g}")
    return redirect_with_notice(
        request, HOME, f"Clock advanced; sandbox time is {now:%Y-%m-%d %H:%M:%S} UTC."
    )


@router.post("/tick")
def tick(
    request: Request, session: CheckedForm, platform: PlatformDep, next: NextField = ""
) -> Response:
    refused = _off(request, platform)
    if refused is not None:
        return refused
    moved = platform.simulator().tick()
    record(platform, session, AuditAction.SANDBOX_TICK, f"moved={moved}")
    return redirect_with_notice(request, next or HOME, f"Simulator round: {moved} order(s) moved.")


@router.post("/scenario")
def scenario(
    request: Request,
    session: CheckedForm,
    platform: PlatformDep,
    issuer_id: Annotated[str, Form(max_length=10)] = "",
    card_id: Annotated[str, Form(max_length=64)] = "",
    chosen: Annotated[str, Form(alias="scenario", max_length=32)] = "",
    next: NextField = "",
) -> Response:
    refused = _off(request, platform)
    if refused is not None:
        return refused
    back = next or HOME
    with platform.reader() as uow:
        known = uow.config.issuer(issuer_id) is not None
    if not known or not re.fullmatch(CARD_ID_PATTERN, card_id.strip()):
        return redirect_with_notice(
            request, back, "Name a configured issuer and a valid card id.", ok=False
        )
    if chosen not in {s.value for s in Scenario}:
        return redirect_with_notice(request, back, f"Unknown scenario {chosen!r}.", ok=False)
    SqlScenarioStore(platform.engine).put(issuer_id, card_id.strip(), chosen)
    detail = f"scenario={chosen}"
    record(platform, session, AuditAction.SANDBOX_SCENARIO_SET, detail, issuer_id=issuer_id)
    return redirect_with_notice(
        request, back, f"Card {card_id.strip()} follows {chosen} from now on."
    )


@router.post("/chaos/{issuerId}/{endpointId}")
def chaos(
    request: Request,
    session: CheckedForm,
    platform: PlatformDep,
    issuer_id: IssuerIdPath,
    endpoint_id: EndpointIdPath,
    duplicate: Annotated[str, Form(max_length=20)] = "0",
    delay_seconds: Annotated[str, Form(max_length=20)] = "0",
    reorder: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    refused = _off(request, platform)
    if refused is not None:
        return refused
    try:
        configured_endpoint(issuer_id, endpoint_id, uow=platform.reader())
        settings = Chaos(float(duplicate or 0), float(delay_seconds or 0), reorder == "on")
    except (DomainError, ValueError) as wrong:
        return redirect_with_notice(request, HOME, f"Chaos not changed: {wrong}", ok=False)
    SqlChaosStore(platform.engine).put(issuer_id, endpoint_id, settings)
    detail = f"endpoint={endpoint_id} duplicate={settings.duplicate:g} "
    detail += f"delay={settings.delay_seconds:g} reorder={settings.reorder}"
    record(platform, session, AuditAction.SANDBOX_CHAOS_SET, detail, issuer_id=issuer_id)
    state = "on" if settings.active else "off"
    return redirect_with_notice(request, HOME, f"Chaos for {issuer_id}/{endpoint_id} is {state}.")

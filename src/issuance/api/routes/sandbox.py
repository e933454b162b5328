"""Sandbox controls (`/sandbox/v1`, sandbox mode only): the clock, scenarios, a simulator round,
notification chaos."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from issuance.api.audit_trail import record_action
from issuance.api.deps import (
    AnyCaller,
    CardIdPath,
    CurrentIssuer,
    EndpointIdPath,
    PlatformDep,
    actor_of,
)
from issuance.contract.workflow import ChaosSettings, ClockAdvance, ScenarioRequest
from issuance.db.sandbox import SqlChaosStore, SqlScenarioStore
from issuance.domain.audit import AuditAction
from issuance.domain.chaos import Chaos
from issuance.domain.errors import NotFound
from issuance.domain.operations import iso_utc
from issuance.platform import Platform
from issuance.services.endpoints import configured_endpoint

router = APIRouter(prefix="/sandbox/v1", tags=["Sandbox"])


def _sandbox(platform: Platform) -> None:
    if platform.sandbox_clock is None:
        raise NotFound("the sandbox API exists only in sandbox mode", code="NOT_IN_SANDBOX")


@router.get("/clock", summary="The sandbox time")
def clock(_caller: AnyCaller, platform: PlatformDep) -> dict[str, str]:
    _sandbox(platform)
    return {"now": iso_utc(platform.clock())}


@router.post(
    "/clock:advance", summary="Move the sandbox time forward (a day of production in a second)"
)
def advance(caller: AnyCaller, body: ClockAdvance, platform: PlatformDep) -> dict[str, str]:
    _sandbox(platform)
    assert platform.sandbox_clock is not None
    now = platform.sandbox_clock.advance(body.seconds)
    record_action(
        platform, actor_of(caller), AuditAction.SANDBOX_CLOCK_ADVANCED, f"seconds={body.seconds:g}"
    )
    return {"now": iso_utc(now)}


@router.put(
    "/issuers/{issuerId}/physicalCards/{cardId}/scenario",
    summary="Choose the simulator path of a card (before or after ordering it)",
)
def set_scenario(
    issuer: CurrentIssuer, card_id: CardIdPath, body: ScenarioRequest, platform: PlatformDep
) -> dict[str, Any]:
    _sandbox(platform)
    SqlScenarioStore(platform.engine).put(issuer.issuer_id, card_id, body.scenario)
    record_action(
        platform,
        actor_of(issuer),
        AuditAction.SANDBOX_SCENARIO_SET,
        f"scenario={body.scenario}",
        issuer_id=issuer.issuer_id,
        card_id=card_id,
    )
    return {"cardId": card_id, "scenario": body.scenario}


@router.post("/simulator:tick", summary="Run one simulator round now")
def tick(caller: AnyCaller, platform: PlatformDep) -> dict[str, int]:
    _sandbox(platform)
    moved = platform.simulator().tick()
    record_action(platform, actor_of(caller), AuditAction.SANDBOX_TICK, f"moved={moved}")
    return {"moved": moved}


@router.put(
    "/issuers/{issuerId}/endpoints/{endpointId}/chaos",
    summary="Duplicate, delay and reorder this endpoint's notifications (all zero: none)",
)
def set_chaos(
    issuer: CurrentIssuer, endpoint_id: EndpointIdPath, body: ChaosSettings, platform: PlatformDep
) -> ChaosSettings:
    """What the spec warns receivers about, on purpose: prove yours converges anyway."""
    _sandbox(platform)
    configured_endpoint(issuer.issuer_id, endpoint_id, uow=platform.reader())
    chaos = Chaos(body.duplicate, body.delay_seconds, body.reorder)
    SqlChaosStore(platform.engine).put(issuer.issuer_id, endpoint_id, chaos)
    detail = f"endpoint={endpoint_id};duplicate={chaos.duplicate:g};delay={chaos.delay_seconds:g}"
    record_action(
        platform,
        actor_of(issuer),
        AuditAction.SANDBOX_CHAOS_SET,
        f"{detail};reorder={chaos.reorder}",
        issuer_id=issuer.issuer_id,
    )
    return body


@router.get("/issuers/{issuerId}/endpoints/{endpointId}/chaos", summary="This endpoint's chaos")
def get_chaos(
    issuer: CurrentIssuer, endpoint_id: EndpointIdPath, platform: PlatformDep
) -> ChaosSettings:
    _sandbox(platform)
    configured_endpoint(issuer.issuer_id, endpoint_id, uow=platform.reader())
    chaos = SqlChaosStore(platform.engine).all().get((issuer.issuer_id, endpoint_id), Chaos())
    return ChaosSettings(
        duplicate=chaos.duplicate, delay_seconds=chaos.delay_seconds, reorder=chaos.reorder
    )

"""Sandbox controls (`/sandbox/v1`, sandbox mode only): the clock, scenarios, a simulator round."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from issuance.api.deps import AnyCaller, CardIdPath, CurrentIssuer, PlatformDep
from issuance.contract.workflow import ClockAdvance, ScenarioRequest
from issuance.db.sandbox import SqlScenarioStore
from issuance.domain.errors import NotFound
from issuance.domain.operations import iso_utc
from issuance.platform import Platform

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
def advance(_caller: AnyCaller, body: ClockAdvance, platform: PlatformDep) -> dict[str, str]:
    _sandbox(platform)
    assert platform.sandbox_clock is not None
    return {"now": iso_utc(platform.sandbox_clock.advance(body.seconds))}


@router.put(
    "/issuers/{issuerId}/physicalCards/{cardId}/scenario",
    summary="Choose the simulator path of a card (before or after ordering it)",
)
def set_scenario(
    issuer: CurrentIssuer, card_id: CardIdPath, body: ScenarioRequest, platform: PlatformDep
) -> dict[str, Any]:
    _sandbox(platform)
    SqlScenarioStore(platform.engine).put(issuer.issuer_id, card_id, body.scenario)
    return {"cardId": card_id, "scenario": body.scenario}


@router.post("/simulator:tick", summary="Run one simulator round now")
def tick(_caller: AnyCaller, platform: PlatformDep) -> dict[str, int]:
    _sandbox(platform)
    return {"moved": platform.simulator().tick()}

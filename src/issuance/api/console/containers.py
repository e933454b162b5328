"""BULK containers: where each one stands and the cards it holds.

Read-only: containers are moved by the operator API (`/operator/v1/.../containers`) and, in the
sandbox, by the simulated bureau; each card's own page shows its `details.container`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from issuance.api.console.rendering import render
from issuance.api.console.session import PATH, SignedIn
from issuance.api.deps import GroupIdPath, IssuerIdPath, PlatformDep
from issuance.domain.containers import ContainerStatus

router = APIRouter(prefix=PATH, include_in_schema=False)
LISTED = 100  # containers on the page, most recently changed first


@router.get("/containers")
def containers(
    request: Request,
    session: SignedIn,
    platform: PlatformDep,
    issuer: Annotated[str, Query(alias="issuerId", max_length=64)] = "",
    status: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    statuses = (status,) if status in ContainerStatus.__members__ else ()
    with platform.reader() as uow:
        issuers = [i.issuer_id for i in uow.config.issuers()]
        found = uow.containers.search(
            issuer if issuer in issuers else None, statuses=statuses, limit=LISTED + 1
        )
    context = {
        "rows": found[:LISTED],
        "more": len(found) > LISTED,
        "issuers": issuers,
        "statuses": list(ContainerStatus),
        "form": {"issuerId": issuer, "status": status},
        "filtered": bool(issuer or status),
    }
    return render(request, "containers.html", context, session=session)


@router.get("/issuers/{issuerId}/containers/{groupId}")
def container(
    request: Request,
    session: SignedIn,
    platform: PlatformDep,
    issuer_id: IssuerIdPath,
    group_id: GroupIdPath,
) -> Response:
    with platform.reader() as uow:
        found = uow.containers.get(issuer_id, group_id, lock=False)
        cards = uow.containers.members(issuer_id, group_id) if found else []
    if found is None:
        return render(
            request, "missing.html", {"what": "container"}, session=session, status_code=404
        )
    context = {"container": found, "cards": cards}
    return render(request, "container.html", context, session=session)

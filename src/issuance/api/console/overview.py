"""The pipeline overview: orders per step and centre, what needs attention, days against the SLA."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from issuance.api.console.chart import column_chart
from issuance.api.console.rendering import live, live_tag, render
from issuance.api.console.session import PATH, SignedIn
from issuance.api.deps import PlatformDep
from issuance.db.delivery_log import counts_by_endpoint
from issuance.db.outbox import DeliveryStatus, disabled_endpoints
from issuance.db.pipeline import NO_CENTRE, attention, counts_by_centre, days
from issuance.domain.statuses import ProductionStatus
from issuance.platform import Platform

router = APIRouter(prefix=PATH, include_in_schema=False)


def _centres(platform: Platform, counted: dict[str, dict[str, int]]) -> list[tuple[str, str]]:
    """(centre id, name) of every configured centre, then any other centre orders name."""
    with platform.reader() as uow:
        config = uow.config.current()
    centres = [(c.centre_id, c.name) for c in (config.personalization_centres if config else ())]
    known = {centre_id for centre_id, _ in centres}
    extra = sorted(c for c in counted if c not in known)
    return centres + [(c, "no centre" if c == NO_CENTRE else c) for c in extra]


def _charts(platform: Platform) -> dict[str, Any]:
    recent = days(platform.engine, now=platform.clock())
    received = column_chart([(f"{d.day:%m-%d}", d.received, str(d.received)) for d in recent])
    rates = column_chart(
        [
            (
                f"{d.day:%m-%d}",
                d.on_time_rate * 100 if d.on_time_rate is not None else None,
                f"{d.on_time_rate:.0%}" if d.on_time_rate is not None else "—",
            )
            for d in recent
        ],
        top=100.0,
    )
    return {"days": recent, "received_chart": received, "rate_chart": rates}


def _pipeline(platform: Platform) -> dict[str, Any]:
    counted = counts_by_centre(platform.engine)
    backlog = counts_by_endpoint(
        platform.engine, [DeliveryStatus.FAILED.value, DeliveryStatus.GONE.value]
    )
    return {
        "statuses": list(ProductionStatus),
        "centres": _centres(platform, counted),
        "counts": counted,
        "attention": attention(platform.engine),
        "exceptions": sum(
            c.get(ProductionStatus.CARD_PROD_EXCEPTION.value, 0) for c in counted.values()
        ),
        "undelivered": sum(sum(c.values()) for c in backlog.values()),
        "disabled_endpoints": len(disabled_endpoints(platform.engine)),
        **_charts(platform),
    }


@router.get("")
def overview(request: Request, session: SignedIn, platform: PlatformDep) -> Response:
    context = _pipeline(platform)
    context["live_etag"] = live_tag(request, "_pipeline.html", context, session=session)
    return render(request, "overview.html", context, session=session)


@router.get("/live/pipeline")
def overview_live(request: Request, session: SignedIn, platform: PlatformDep) -> Response:
    return live(request, "_pipeline.html", _pipeline(platform), session=session)

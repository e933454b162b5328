"""Order search and the card page: its current order, SLA standing, actions and full journal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from issuance.api.console.actions import available
from issuance.api.console.rendering import live, live_tag, render, span
from issuance.api.console.session import PATH, SignedIn
from issuance.api.deps import CardIdPath, IssuerIdPath, PlatformDep
from issuance.db.order_search import OrderFilter, search_orders
from issuance.db.sandbox import SqlScenarioStore
from issuance.db.timeline import card_timeline
from issuance.domain import sla
from issuance.domain.errors import InvalidRequest
from issuance.domain.orders import Order
from issuance.domain.statuses import OperationStatus, ProductionStatus
from issuance.platform import Platform
from issuance.services.simulator import Scenario

router = APIRouter(prefix=PATH, include_in_schema=False)
PAGE_SIZE = 50


def _day(value: str, field: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise InvalidRequest("must be a date, YYYY-MM-DD", field=field) from None


def _midnight(day: date | None, *, plus: int = 0) -> datetime | None:
    return None if day is None else datetime.combine(day + timedelta(days=plus), time(), UTC)


def _issuers(platform: Platform) -> list[str]:
    with platform.reader() as uow:
        config = uow.config.current()
    return [issuer.issuer_id for issuer in (config.issuers if config else ())]


def _filter(form: dict[str, str]) -> OrderFilter:
    """The search form as a filter; a malformed date is an `InvalidRequest` naming its field."""
    return OrderFilter(
        issuer_id=form["issuerId"] or None,
        card_id=form["cardId"] or None,
        issuer_request_id=form["issuerRequestId"] or None,
        consumer_id=form["consumerId"] or None,
        statuses=(form["status"],) if form["status"] else (),
        centre=form["centre"] or None,
        due_from=_midnight(_day(form["dueFrom"], "dueFrom")),
        due_before=_midnight(_day(form["dueTo"], "dueTo"), plus=1),
    )


@router.get("/orders")
def search(
    request: Request,
    session: SignedIn,
    platform: PlatformDep,
    card_id: Annotated[str, Query(alias="cardId", max_length=64)] = "",
    issuer_request_id: Annotated[str, Query(alias="issuerRequestId", max_length=64)] = "",
    consumer_id: Annotated[str, Query(alias="consumerId", max_length=64)] = "",
    issuer_id: Annotated[str, Query(alias="issuerId", max_length=10)] = "",
    status: Annotated[str, Query(max_length=32)] = "",
    centre: Annotated[str, Query(max_length=64)] = "",
    due_from: Annotated[str, Query(alias="dueFrom", max_length=10)] = "",
    due_to: Annotated[str, Query(alias="dueTo", max_length=10)] = "",
    after: Annotated[str, Query(max_length=400)] = "",
    size: Annotated[int, Query(ge=1, le=200)] = PAGE_SIZE,
) -> Response:
    """Keyset-paged: `after` is the cursor of the previous page's last row."""
    form = {
        "cardId": card_id.strip(),
        "issuerRequestId": issuer_request_id.strip(),
        "consumerId": consumer_id.strip(),
        "issuerId": issuer_id,
        "status": status,
        "centre": centre,
        "dueFrom": due_from,
        "dueTo": due_to,
    }
    page, error = None, None
    try:
        page = search_orders(platform.engine, _filter(form), after=after or None, limit=size)
    except InvalidRequest as refused:
        error = f"{refused.field}: {refused.message}"
    context = {
        "form": form,
        "query": {k: v for k, v in form.items() if v},
        "statuses": list(ProductionStatus),
        "issuers": _issuers(platform),
        "page": page,
        "error": error,
        "size": size,
        "first_page": not after,
    }
    status_code = 400 if error else 200
    return render(request, "orders.html", context, session=session, status_code=status_code)


@dataclass(frozen=True, slots=True)
class Standing:
    """The order against its due date, in words and a tone for the badge."""

    label: str
    tone: str  # ok, warn, bad, neutral
    detail: str


def standing(order: Order, now: datetime) -> Standing:
    due = order.due_date
    if due is None:
        return Standing("No due date", "neutral", "the order was refused before an SLA applied")
    if order.status is OperationStatus.FAILED:
        return Standing("Not measured", "neutral", "failed or cancelled orders have no SLA outcome")
    if order.production_status is ProductionStatus.CARD_SHIPPED and order.end_time is not None:
        if order.end_time <= due:
            return Standing("Shipped on time", "ok", f"{span(due - order.end_time)} before due")
        return Standing("Shipped late", "bad", f"{span(order.end_time - due)} after due")
    now_standing = sla.standing(now, received_at=order.start_time, due=due)
    if now_standing is sla.SlaStanding.LATE:
        return Standing("Late", "bad", f"overdue by {span(now - due)}")
    if now_standing is sla.SlaStanding.AT_RISK:
        return Standing("At risk", "warn", f"due in {span(due - now)}")
    return Standing("On time", "ok", f"due in {span(due - now)}")


def _card(platform: Platform, issuer_id: str, card_id: str) -> dict[str, Any] | None:
    with platform.reader() as uow:
        order = uow.orders.latest_for_card(issuer_id, card_id)
        others = [o for o, _ in uow.orders.for_card(issuer_id, card_id)] if order else []
    if order is None:
        return None
    scenario = None
    if platform.sandbox_clock is not None:
        stored = SqlScenarioStore(platform.engine).get(issuer_id, card_id)
        scenario = stored[0] if stored else None
    return {
        "order": order,
        "orders": others,
        "standing": standing(order, platform.clock()),
        "actions": available(order),
        "timeline": card_timeline(platform.engine, issuer_id, card_id),
        "scenario": scenario,
        "scenarios": list(Scenario),
    }


def _card_page(platform: Platform, issuer_id: str, card_id: str) -> tuple[dict[str, Any], int]:
    found = _card(platform, issuer_id, card_id)
    if found is None:
        return {"issuer_id": issuer_id, "card_id": card_id, "missing": True}, 404
    return {"issuer_id": issuer_id, "card_id": card_id, "missing": False, **found}, 200


@router.get("/issuers/{issuerId}/cards/{cardId}")
def card(
    request: Request,
    session: SignedIn,
    platform: PlatformDep,
    issuer_id: IssuerIdPath,
    card_id: CardIdPath,
) -> Response:
    context, status = _card_page(platform, issuer_id, card_id)
    if status == 200:
        context["live_etag"] = live_tag(request, "_card.html", context, session=session)
    return render(request, "card.html", context, session=session, status_code=status)


@router.get("/live/issuers/{issuerId}/cards/{cardId}")
def card_live(
    request: Request,
    session: SignedIn,
    platform: PlatformDep,
    issuer_id: IssuerIdPath,
    card_id: CardIdPath,
) -> Response:
    context, status = _card_page(platform, issuer_id, card_id)
    if status != 200:
        return Response("no such card", status_code=404, media_type="text/plain")
    return live(request, "_card.html", context, session=session)

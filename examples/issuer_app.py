"""A reference issuer backend on the issuer kit: order cards, follow them, list what it knows.

    uvicorn issuer_app:app --app-dir examples --port 9001     # beside `make run`
    curl -X POST localhost:9001/cards/card-0001               # order a card
    curl localhost:9001/cards                                 # the issuer's view of its cards

The README's "Integrate an issuer backend" example, grown a little:

* the kit's `Receiver` mounted at D1's callback path (`POST /notifications/d1/v2/issuers/
  {issuerId}/cards`): it checks the signature, stores each card's state in the issuer's own
  database (`CardStore`) whatever arrives twice or late, and calls `on_change` once per real
  change;
* `POST /cards/{card_id}` orders a card through the kit's client (`AsyncIssuerClient`): token,
  JWE encryption of the card data and safe retries are the client's business;
* `GET /cards` is the issuer's view, read from its store: what `issuance demo` compares with
  the platform's;
* `POST /reconcile` asks the platform for whatever notifications missed.

Settings come from the environment; the defaults are the sandbox's (`make run`):
ISSUER_PLATFORM_URL, ISSUER_ID, ISSUER_CLIENT_ID, ISSUER_CLIENT_SECRET, ISSUER_SIGNING_SECRET
(the endpoint's Standard Webhooks secret) and ISSUER_DATABASE_URL (any SQLAlchemy URL).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from issuance.kit import AsyncIssuerClient, CardChange, CardStore, ClientSecret, Receiver, reconcile

PLATFORM = os.environ.get("ISSUER_PLATFORM_URL", "http://127.0.0.1:8000")
ISSUER = os.environ.get("ISSUER_ID", "DEMOBANK01")
CLIENT_ID = os.environ.get("ISSUER_CLIENT_ID", "demobank01")
CLIENT_SECRET = os.environ.get("ISSUER_CLIENT_SECRET", "sandbox-secret-demobank01")
SIGNING_SECRET = os.environ.get(  # from the sandbox configuration (sandbox.yaml)
    "ISSUER_SIGNING_SECRET", "whsec_c2FuZGJveC1zaWduaW5nLXNlY3JldC1kZW1vYmFuazAx"
)
DATABASE_URL = os.environ.get("ISSUER_DATABASE_URL", "sqlite:///issuer.db")

ADDRESS = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "line1": "10 Rue de Rivoli",
    "zipCode": "75001",
    "city": "Paris",
    "countryCode": "FR",
}
ORDER: dict[str, Any] = {
    "cardProductId": "DEMO-DEBIT",
    "services": {"issuance": "CREATION", "delivery": "laposte-lettre"},
    "paymentApplication": {"config": "VISA-DEBIT", "odaKeyIndex": "1", "derivationKeyIndex": "1"},
    "shipment": {"type": "INDIVIDUAL", "deliveryAddress": ADDRESS, "individualAddress": ADDRESS},
}
CARD_DATA = {"pan": "4539910000000002", "exp": "2911", "name": "ADA LOVELACE"}  # sent as JWE

store = CardStore(DATABASE_URL)  # the issuer's own database
store.create_schema()
d1 = AsyncIssuerClient(PLATFORM, ISSUER, ClientSecret(CLIENT_ID, CLIENT_SECRET))
changes_seen: Counter[str] = Counter()  # handler calls per card since this process started


async def on_change(change: CardChange) -> None:
    """Called once per real change, after it is stored; here the issuer's business would run
    (tell the cardholder the card is on its way, and so on). `change.change_id` is stable: a
    call repeated after a crash carries the same one."""
    changes_seen[change.card_id] += 1
    shipment = change.operation.details.shipment
    where = f" / {shipment.status}" if shipment and shipment.status else ""
    print(f"{change.card_id}: {change.status}{where} (change {change.change_id})", flush=True)


receiver = Receiver(store, on_change, issuer_ids={ISSUER}, secrets=[SIGNING_SECRET])


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    await receiver.dispatch_pending()  # changes stored just before a crash reach the handler now
    yield
    await d1.aclose()


app = FastAPI(title="Example issuer backend", lifespan=lifespan)
app.include_router(receiver.router)


@app.post("/cards/{card_id}", status_code=202)
async def order_card(card_id: str) -> dict[str, Any]:
    placed = await d1.order_card(card_id, ORDER, card_data=CARD_DATA)
    return {"cardId": card_id, "operationId": placed.operation_id, "replayed": placed.replayed}


@app.get("/cards")
def cards() -> list[dict[str, Any]]:
    """Every operation the issuer knows of, as last stored, with its handler calls per card."""
    return [
        {
            "cardId": operation.card_id,
            "operation": operation.model_dump(mode="json", by_alias=True, exclude_none=True),
            "changesHandled": changes_seen[operation.card_id],
        }
        for operation in store.operations(ISSUER)
    ]


@app.post("/reconcile")
async def reconcile_now() -> dict[str, int]:
    report = await reconcile(store, d1, handler=on_change)  # change feed, else productionStatus
    return {"changes": report.changes, "holes": len(report.remaining_gaps)}

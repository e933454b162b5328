"""The delivery worker: claim due deliveries, POST them grouped per endpoint, settle each.

At least once, honestly: a delivery is marked delivered only after a 2xx; a worker killed
between the POST and the settlement leaves its lease to expire, and the next claim sends the
notification again (receivers de-duplicate on `operationId` + `sequence`).
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import structlog

from issuance.db.outbox import Claim, Settlement, claim, settle
from issuance.delivery.sender import message_id, send
from issuance.domain.parties import NotificationEndpoint
from issuance.domain.retry import Outcome, RetryPolicy, Verdict
from issuance.platform import Platform

log = structlog.get_logger("issuance.delivery")

BATCH = 200  # deliveries claimed per round


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 100_000}"


@dataclass
class DeliveryWorker:
    platform: Platform
    client: httpx.Client
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    identity: str = field(default_factory=worker_id)
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], datetime] | None = None
    lease: timedelta | None = None  # default: the platform's settings

    def run_once(self, *, stopping: threading.Event | None = None) -> int:
        """One round; the number of deliveries attempted.

        Each POST is settled as soon as it is answered, so a crash repeats at most the one in
        flight; `stopping` ends the round between two POSTs (graceful shutdown).
        """
        now = self._now()
        lease = self.lease or timedelta(seconds=self.platform.settings.delivery_lease_seconds)
        claims = claim(
            self.platform.engine, worker_id=self.identity, now=now, lease=lease, limit=BATCH
        )
        attempted, lease_ends = 0, now + lease
        gone: set[tuple[str, str]] = set()  # endpoints that answered 410 during this round
        for endpoint, chunk in self._chunks(claims):
            if stopping is not None and stopping.is_set():
                break  # the rest of the claims free up when their lease ends
            timeout = timedelta(seconds=endpoint.timeout_seconds if endpoint else 0)
            if self._now() + timeout >= lease_ends:
                break  # another worker may own them before this POST ends: never send stale
            if (chunk[0].issuer_id, chunk[0].endpoint_id) in gone:
                continue  # its claims free up with the lease; claiming skips it from now on
            settlements = self._deliver(endpoint, chunk)
            settle(self.platform.engine, settlements, worker_id=self.identity)
            if any(item.decision.verdict is Verdict.GONE for item in settlements):
                gone.add((chunk[0].issuer_id, chunk[0].endpoint_id))
            attempted += len(chunk)
        return attempted

    def _now(self) -> datetime:
        return (self.clock or self.platform.clock)()

    def _chunks(
        self, claims: list[Claim]
    ) -> Iterator[tuple[NotificationEndpoint | None, list[Claim]]]:
        """Claims grouped by issuer and endpoint, cut at the endpoint's operations per call."""
        groups: dict[tuple[str, str], list[Claim]] = defaultdict(list)
        for item in claims:
            groups[(item.issuer_id, item.endpoint_id)].append(item)
        for (issuer_id, endpoint_id), items in groups.items():
            endpoint = self._endpoint(issuer_id, endpoint_id)
            size = endpoint.max_operations_per_call if endpoint else len(items)
            for start in range(0, len(items), size):
                yield endpoint, items[start : start + size]

    def _endpoint(self, issuer_id: str, endpoint_id: str) -> NotificationEndpoint | None:
        with self.platform.reader() as uow:
            issuer = uow.config.issuer(issuer_id)
        endpoints = issuer.notification_endpoints if issuer else ()
        return next((e for e in endpoints if e.endpoint_id == endpoint_id), None)

    def _deliver(
        self, endpoint: NotificationEndpoint | None, chunk: list[Claim]
    ) -> list[Settlement]:
        attempted_at = self._now()
        if (
            endpoint is None
        ):  # removed from the configuration: retried until it comes back or expires
            outcome, latency = Outcome(error="endpoint no longer configured"), 0.0
        else:
            sent = send(
                self.client,
                endpoint,
                issuer_id=chunk[0].issuer_id,
                operations=[c.operation for c in chunk],
                message=message_id([c.delivery_id for c in chunk]),
            )
            outcome, latency = sent.outcome, sent.latency_ms
            log.info(
                "notification sent",
                endpoint=endpoint.endpoint_id,
                issuer_id=chunk[0].issuer_id,
                operations=len(chunk),
                status_code=outcome.status_code,
                error=outcome.error,
                latency_ms=round(latency, 1),
            )
        return [
            Settlement(
                claim=item,
                outcome=outcome,
                decision=self.policy.decide(
                    outcome,
                    attempts=item.attempts + 1,
                    first_attempt_at=item.first_attempt_at or attempted_at,
                    now=attempted_at,
                    rng=self.rng,
                ),
                attempted_at=attempted_at,
                latency_ms=latency,
            )
            for item in chunk
        ]


class DeliveryThread:
    """Runs a worker in a thread of the server process (the single-process sandbox)."""

    def __init__(self, platform: Platform, *, idle_seconds: float = 0.5) -> None:
        self.platform = platform
        self.idle_seconds = idle_seconds
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="delivery", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=15)

    def _run(self) -> None:
        with httpx.Client() as client:
            worker = DeliveryWorker(self.platform, client)
            while not self.stopping.is_set():
                try:
                    busy = worker.run_once(stopping=self.stopping)
                except Exception:  # a failed round must not stop delivery; the next one retries
                    log.exception("delivery round failed")
                    busy = 0
                if not busy:
                    self.stopping.wait(self.idle_seconds)

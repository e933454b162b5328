"""The HTTP load generator of bench/intake.py and bench/status.py, run as its own process.

    .venv/bin/python bench/driver.py SPEC.json OUT.json

aiohttp on uvloop over loopback, bounded in time. The spec (JSON) names the requests and the load:

    base_url, method, path, headers      the request; `path` and `body` may hold the markers
    body                                 @N@ (a number unique to the request, so orders are
                                         distinct), @JWE@ (the next JWE of the pool) and @CARD@
                                         (a random card of `cards`)
    jwe_key, jwe_pool, jwe_fields        pre-encrypt `jwe_pool` JWEs of `jwe_fields` for this
                                         public JWK before the clock starts (ECDH-ES + A256GCM)
    cards                                for @CARD@
    phases                               a list of {"mode": "closed", "concurrency", "seconds"}
                                         (saturation: each connection sends as soon as the last
                                         answer is in) or {"mode": "open", "rate", "seconds"}
                                         (requests start at a fixed rate, whatever the answers;
                                         latency counts from the scheduled start)

Writes one result per phase: requests, 2xx, other statuses, requests/s (2xx), p50/p99/max ms.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop


def jwe_pool(spec: dict[str, Any]) -> list[str]:
    if "jwe_key" not in spec:
        return [""]
    from joserfc.jwk import ECKey

    from issuance.security.field_encryption import encrypt_fields

    key = ECKey.import_key(spec["jwe_key"])
    return [encrypt_fields(spec["jwe_fields"], key) for _ in range(spec.get("jwe_pool", 1000))]


class Load:
    def __init__(self, spec: dict[str, Any], session: aiohttp.ClientSession) -> None:
        self.spec = spec
        self.session = session
        self.url = spec["base_url"] + spec["path"]
        self.method = spec.get("method", "GET")
        self.headers = spec.get("headers", {})
        self.body = spec.get("body")
        self.jwes = itertools.cycle(jwe_pool(spec))
        self.cards = spec.get("cards") or [""]
        self.numbers = itertools.count(int(time.time() * 1000) % 10**9 * 1000)

    def request(self) -> tuple[str, bytes | None]:
        number = str(next(self.numbers))
        card = random.choice(self.cards)  # noqa: S311 (load, not secrets)
        url = self.url.replace("@N@", number).replace("@CARD@", card)
        if self.body is None:
            return url, None
        body = self.body.replace("@N@", number).replace("@CARD@", card)
        return url, body.replace("@JWE@", next(self.jwes)).encode()

    async def one(self, started: float, latencies: list[float], statuses: dict[str, int]) -> None:
        url, body = self.request()
        try:
            async with self.session.request(
                self.method, url, data=body, headers=self.headers
            ) as response:
                await response.read()
                status = str(response.status)
        except aiohttp.ClientError as error:
            status = type(error).__name__
        statuses[status] = statuses.get(status, 0) + 1
        if status.startswith("2"):
            latencies.append((time.perf_counter() - started) * 1000)

    async def closed(
        self, concurrency: int, seconds: float
    ) -> tuple[list[float], dict[str, int], float]:
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            while time.perf_counter() < deadline:
                await self.one(time.perf_counter(), latencies, statuses)

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return latencies, statuses, time.perf_counter() - started

    async def open(self, rate: float, seconds: float) -> tuple[list[float], dict[str, int], float]:
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        tasks: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        for index in range(int(rate * seconds)):
            due = started + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.one(due, latencies, statuses))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        return latencies, statuses, seconds


def summary(
    phase: dict[str, Any], latencies: list[float], statuses: dict[str, int], span: float
) -> dict[str, Any]:
    latencies.sort()
    ok = len(latencies)
    return {
        **phase,
        "requests": sum(statuses.values()),
        "ok": ok,
        "statuses": statuses,
        "per_second": round(ok / span, 1),
        "p50_ms": round(statistics.median(latencies), 2) if ok else None,
        "p99_ms": round(latencies[max(0, int(ok * 0.99) - 1)], 2) if ok else None,
        "max_ms": round(latencies[-1], 2) if ok else None,
    }


async def drive(spec: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    connector = aiohttp.TCPConnector(limit=spec.get("connections", 512))
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        load = Load(spec, session)
        for phase in spec["phases"]:
            if phase["mode"] == "closed":
                run = load.closed(phase["concurrency"], phase["seconds"])
            else:
                run = load.open(phase["rate"], phase["seconds"])
            results.append(summary(phase, *(await run)))
    return results


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    results = uvloop.run(drive(spec))
    Path(sys.argv[2]).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

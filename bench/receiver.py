"""A fast issuer endpoint for the delivery benchmark: counts what it is sent, nothing more.

    python bench/receiver.py PORT

aiohttp's server on one event loop. `POST .../cards` records (cardId, sequence, arrival time) of
each operation; `GET /stats` answers the counts and
its own CPU seconds; `POST /dump` writes the arrivals to a JSON file.
The ceiling loops in bench/delivery.py POST to the same server, so both sides share its cost.
"""

from __future__ import annotations

import json
import sys
import time

from aiohttp import web

arrivals: list[tuple[str, int, float]] = []
posts = 0


async def notify(request: web.Request) -> web.Response:
    global posts
    body = json.loads(await request.read())
    now = time.time()
    posts += 1
    arrivals.extend((op.get("cardId", ""), op.get("sequence", 0), now) for op in body["operations"])
    return web.Response(status=204)


async def stats(_: web.Request) -> web.Response:
    return web.json_response(
        {"posts": posts, "operations": len(arrivals), "cpu_seconds": time.process_time()}
    )


async def dump(request: web.Request) -> web.Response:
    path = (await request.json())["path"]
    with open(path, "w") as file:
        json.dump(arrivals, file)
    return web.json_response({"written": len(arrivals)})


async def reset(_: web.Request) -> web.Response:
    global posts
    arrivals.clear()
    posts = 0
    return web.json_response({})


def main() -> None:
    app = web.Application()
    app.router.add_post("/notifications/d1/v2/issuers/{issuer}/cards", notify)
    app.router.add_get("/stats", stats)
    app.router.add_post("/dump", dump)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()

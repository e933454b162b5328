"""Instructions per single-card order, the platform's and the ceiling's, counted by valgrind.

    .venv/bin/python bench/intake_instructions.py [--orders N] [--concurrency C] [--json PATH]

Takes under a minute. Timings on this shared machine move by 5% from one run to the next,
so a change worth 2% cannot be seen in them; instructions can: the same code counts the same
to 0.2%. This is how the changes of 2026-12-05 were weighed (bench/RESULTS.md, "Order intake").

Each server's ASGI application is driven in process, without sockets: C concurrent requests
(default 32, so groups of about that size form, as at saturation), bench/intake.py's order with
a JWE of its own each. The whole run is under `valgrind --tool=callgrind`, which counts only
while the N measured orders (default 320) go through, after a warm-up of 224: start-up, key
generation and the warm-up are left out. The platform runs on a new SQLite file with the
sandbox configuration, outside sandbox mode, built as each `issuance serve` process builds it
(JSON access log, collector settled); the ceiling is bench/bare_intake_app.py on a new SQLite
file. Counting excludes the kernel (syscalls) and says nothing of cache misses: time per
instruction differs between the two, so the ratio of counts is not the ratio of rates
(bench/intake.py measures those).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from delivery import provenance  # bench/ is on the script's path

HERE = Path(__file__).parent
WARM_UP = 224
Asgi = Callable[..., Any]


def _toggle(on: bool) -> None:
    """Start or stop counting in this process (it runs under callgrind)."""
    subprocess.run(  # noqa: S603 (a fixed command line)
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],  # noqa: S607
        capture_output=True,
        check=True,
    )


async def _post(app: Asgi, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """One POST through the ASGI application; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    received = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:  # the body is read once; a later read waits for a disconnect
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _load(
    app: Asgi, headers: list[tuple[bytes, bytes]], jwk: dict[str, Any], args: argparse.Namespace
) -> dict[int, int]:
    """The warm-up, then the measured orders with counting on; the statuses of those."""
    from intake import CARD_DATA, ORDER, PATH
    from joserfc.jwk import ECKey

    from issuance.security.field_encryption import encrypt_fields

    key = ECKey.import_key(jwk)
    jwes = itertools.cycle([encrypt_fields(CARD_DATA, key) for _ in range(500)])
    numbers = itertools.count(1)
    template = json.dumps(ORDER, separators=(",", ":"))
    statuses: dict[int, int] = {}

    async def client(orders: int) -> None:
        for _ in range(orders):
            number = str(next(numbers))
            body = template.replace("@N@", number).replace("@JWE@", next(jwes)).encode()
            status = await _post(app, PATH.replace("@N@", number), headers, body)
            statuses[status] = statuses.get(status, 0) + 1

    each = args.orders // args.concurrency
    await asyncio.gather(*(client(WARM_UP // args.concurrency) for _ in range(args.concurrency)))
    statuses.clear()
    _toggle(True)
    await asyncio.gather(*(client(each) for _ in range(args.concurrency)))
    _toggle(False)
    return statuses


async def _platform(directory: Path, args: argparse.Namespace) -> dict[int, int]:
    import httpx
    from intake import platform_environment, prepare_platform

    url = f"sqlite:///{directory / 'platform.db'}"
    prepare_platform(url, directory)
    for name, value in platform_environment(url, directory, 8000).items():
        if name.startswith("ISSUANCE_"):
            os.environ[name] = value
    from issuance.cli.asgi import app_from_environment

    app = app_from_environment()  # as each `issuance serve` process builds it, logging included
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            token = await http.post(
                "/authz/v1/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "demobank01",
                    "client_secret": "sandbox-secret-demobank01",
                },
            )
            jwks = await http.get("/.well-known/jwks.json")
        headers = [
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token.json()['access_token']}".encode()),
        ]
        return await _load(app, headers, jwks.json()["keys"][0], args)


async def _bare(directory: Path, args: argparse.Namespace) -> dict[int, int]:
    database = directory / "bare.db"
    os.environ["BARE_DATABASE"] = str(database)
    import bare_intake_app as bare

    setup = sqlite3.connect(database)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE " + bare.ORDERS_TABLE.format("orders"))
    setup.close()
    async with bare.lifespan(bare.app):
        headers = [(b"content-type", b"application/json")]
        return await _load(bare.app, headers, bare.KEY.as_dict(private=False), args)


def _child(server: str, args: argparse.Namespace) -> None:
    """Under callgrind: run one server's load and write its statuses to `args.statuses`."""
    import uvloop

    with tempfile.TemporaryDirectory() as tmp:
        run = _platform if server == "platform" else _bare
        statuses = uvloop.run(run(Path(tmp), args))
    args.statuses.write_text(json.dumps(statuses))


def _count(server: str, args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    """Run this script under callgrind for `server`; its instructions per order."""
    out = directory / f"callgrind-{server}.out"
    answers = directory / f"statuses-{server}.json"
    done = subprocess.run(  # noqa: S603 (our own command line)
        [  # noqa: S607 (valgrind from PATH, like a user would)
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
            server,
            "--orders",
            str(args.orders),
            "--concurrency",
            str(args.concurrency),
            "--statuses",
            str(answers),
        ],
        env={**os.environ, "PYTHONHASHSEED": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {server} run failed:\n{done.stderr[-2000:]}")
    statuses = json.loads(answers.read_text())
    orders = args.orders // args.concurrency * args.concurrency
    if statuses != {"202": orders}:
        raise SystemExit(f"the {server} run answered {statuses}, not {orders} x 202")
    totals = next(line for line in out.read_text().splitlines() if line.startswith("totals:"))
    return {"orders": orders, "instructions_per_order": round(int(totals.split()[1]) / orders)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=320, help="measured orders")
    parser.add_argument("--concurrency", type=int, default=32, help="requests at once")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--child", choices=("platform", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--statuses", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is needed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        figures = {server: _count(server, args, Path(tmp)) for server in ("platform", "bare")}
    platform, bare = figures["platform"], figures["bare"]
    figures["ratio"] = round(bare["instructions_per_order"] / platform["instructions_per_order"], 2)
    figures["measured"] = provenance()
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()

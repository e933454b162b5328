"""Single-card order intake over HTTP: orders/s and p50/p99 at half load, next to the ceiling.

    .venv/bin/python bench/intake.py [--database-url URL] [--api-processes N] [--seconds S]
                                     [--concurrency C] [--rounds R] [--json PATH]

Takes about 4 minutes (6 on PostgreSQL): R = 3 rounds of two servers (three on PostgreSQL),
each a warm-up of 3 s, then 3 x S seconds (S = 10 by default).

1. The platform: `issuance serve --workers N` (N = --api-processes) on the sandbox
   configuration, in a subprocess on a free port (a new SQLite file, or the PostgreSQL database
   named by --database-url, dropped and created first), with the bureau simulator, in-server
   delivery and body logging off, so the figure is intake alone.
2. The ceiling: bench/bare_intake_app.py with as many processes, a bare FastAPI + uvicorn
   endpoint doing the same JWE decryption (joserfc, ECDH-ES + A256GCM on P-256, the one
   configuration D1 allows) and one SQLite insert. On PostgreSQL a third server follows in each
   round: the same endpoint making its one insert (autocommit) into the platform's database, so
   the database server's share of the cores is in both figures.
3. Each is driven by bench/driver.py in its own process (aiohttp on uvloop, loopback): it gets
   the pre-encrypted JWE pool ready, warms up, then finds saturation (closed loop, C connections,
   every order a new card), then measures latency at 50% of that rate (open loop), then at a
   quiet 20 orders/s, where each order commits alone: the latency one order sees on its own.
4. Platform then ceiling, R times, the platform on a fresh database each time; the round with
   the median ratio is reported, with every round's figures: on this shared machine the
   ceiling alone moved from 731 to 992 orders/s within an hour, so one pair can mislead.

Server, driver and database share this machine's cores: the CPU seconds of the server's processes
(read from /proc around each measured phase) and of the driver are reported, and the server's
CPU per order at saturation.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from delivery import (  # bench/ is on the script's path
    conninfo,
    free_port,
    fresh_database,
    provenance,
)

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.db.migrate import upgrade
from issuance.platform import Platform
from issuance.services.configuration import load_config
from issuance.settings import Settings

HERE = Path(__file__).parent
ISSUANCE = Path(sys.executable).parent / "issuance"
ISSUER = "DEMOBANK01"
CARD_DATA = {"pan": "4539910000000002", "exp": "2911", "name": "ADA LOVELACE", "cvv2": "123"}
ADDRESS = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "line1": "10 Rue de Rivoli",
    "zipCode": "75001",
    "city": "Paris",
    "countryCode": "FR",
}
ORDER = {
    "distributionChannel": "THALES",
    "consumerId": "consumer-@N@",
    "cardProductId": "DEMO-DEBIT",
    "issuerRequestId": "req-@N@",
    "services": {
        "issuance": "CREATION",
        "delivery": "laposte-lettre",
        "cardCarrier": "WELCOME-LETTER",
    },
    "encryptedData": "@JWE@",
    "paymentApplication": {"config": "VISA-DEBIT", "odaKeyIndex": "1", "derivationKeyIndex": "1"},
    "shipment": {"type": "INDIVIDUAL", "deliveryAddress": ADDRESS, "individualAddress": ADDRESS},
}
PATH = f"/banking/v1/issuers/{ISSUER}/physicalCards/bench-@N@/operations:production"


def platform_environment(url: str, directory: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "ISSUANCE_DATABASE_URL": url,
        "ISSUANCE_KEYS_DIR": str(directory / "keys"),
        "ISSUANCE_SIMULATOR": "false",
        "ISSUANCE_DELIVER_IN_SERVER": "false",
        "ISSUANCE_LOG_BODIES": "false",
        "ISSUANCE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }


def prepare_platform(url: str, directory: Path) -> None:
    """Migrate, make the keys and load the sandbox configuration, as `serve --sandbox` does."""
    fresh_database(url)
    upgrade(url)
    settings = Settings(database_url=url, sandbox=True, keys_dir=directory / "keys")
    platform = Platform.build(settings)
    try:
        load_config(read_config(SANDBOX_CONFIG), uow=platform.uow())
    finally:
        platform.close()


def start_platform(
    url: str, directory: Path, port: int, processes: int = 1
) -> subprocess.Popen[bytes]:
    """`issuance serve` (not --sandbox: the sandbox clock is read from the database on a second
    connection in every order, see the report) on the sandbox configuration."""
    return subprocess.Popen(  # noqa: S603 (our own command line)
        [str(ISSUANCE), "serve", "--port", str(port), "--workers", str(processes)],
        env=platform_environment(url, directory, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            httpx.get(f"{base}/.well-known/jwks.json", timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{base} did not answer in {timeout} s")


def start_bare(
    port: int, database: Path, processes: int = 1, postgresql: str | None = None
) -> subprocess.Popen[bytes]:
    """The bare endpoint inserting into SQLite, or into PostgreSQL at `postgresql` (libpq)."""
    environment = {**os.environ, "BARE_INTAKE_POSTGRESQL": postgresql} if postgresql else None
    return subprocess.Popen(  # noqa: S603 (our own command line)
        [
            sys.executable,
            str(HERE / "bare_intake_app.py"),
            str(port),
            str(database),
            str(processes),
        ],
        env=environment,
    )


TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process and its live descendants, from /proc."""
    children: dict[int, list[int]] = {}
    seconds: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        child = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(child)
        seconds[child] = (int(fields[11]) + int(fields[12])) / TICKS
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += seconds.get(current, 0.0)
        todo.extend(children.get(current, []))
    return total


def stop(process: subprocess.Popen[bytes]) -> float:
    """SIGTERM the server; its CPU seconds (user + system)."""
    process.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return round(usage.ru_utime + usage.ru_stime, 1)


def token(base: str) -> str:
    answer = httpx.post(
        f"{base}/authz/v1/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "demobank01",
            "client_secret": "sandbox-secret-demobank01",
        },
    )
    return str(answer.raise_for_status().json()["access_token"])


def drive(spec: dict[str, Any], directory: Path, server: int | None = None) -> list[dict[str, Any]]:
    """Run bench/driver.py on `spec` in its own process; its results.

    With `server` (a pid), the last phase also gets the CPU seconds the server's processes and
    the driver spent during the run (the driver's pre-encryption included: it is small).
    """
    spec_path, out_path = directory / "spec.json", directory / "out.json"
    spec_path.write_text(json.dumps(spec))
    before = tree_cpu(server) if server else 0.0
    driver = subprocess.Popen(  # noqa: S603 (our own command line)
        [sys.executable, str(HERE / "driver.py"), str(spec_path), str(out_path)]
    )
    _, status, usage = os.wait4(driver.pid, 0)
    driver.returncode = os.waitstatus_to_exitcode(status)
    if driver.returncode != 0:
        raise SystemExit("the load driver failed")
    results = list(json.loads(out_path.read_text()))
    if server:
        last = results[-1]
        last["server_cpu_seconds"] = round(tree_cpu(server) - before, 2)
        last["driver_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
        last["server_cpu_ms_per_request"] = (
            round(last["server_cpu_seconds"] * 1000 / last["ok"], 3) if last["ok"] else None
        )
        span = last["seconds"]
        last["server_cores"] = round(last["server_cpu_seconds"] / span, 2)
    return results


# Orders/s of the quiet phase: each order commits alone (no group forms), as on a quiet day.
QUIET_RATE = 20.0


def measure(
    base: str, headers: dict[str, str], args: argparse.Namespace, directory: Path, server: int
) -> dict[str, Any]:
    """Saturation (closed loop), then p50/p99 at half that rate (open loop)."""
    spec: dict[str, Any] = {
        "base_url": base,
        "method": "POST",
        "path": PATH,
        "headers": {"content-type": "application/json", **headers},
        "body": json.dumps(ORDER, separators=(",", ":")),
        "jwe_key": httpx.get(f"{base}/.well-known/jwks.json").json()["keys"][0],
        "jwe_fields": CARD_DATA,
        "jwe_pool": 1000,
    }
    [warm] = drive(
        {**spec, "phases": [{"mode": "closed", "concurrency": 16, "seconds": 3}]}, directory
    )
    saturation = {"mode": "closed", "concurrency": args.concurrency, "seconds": args.seconds}
    groups_before = grouping(base)
    [saturated] = drive({**spec, "phases": [saturation]}, directory, server)
    groups_after = grouping(base)
    if groups_before and groups_after and groups_after[0] > groups_before[0]:
        groups = groups_after[0] - groups_before[0]
        saturated["mean_group_size"] = round((groups_after[1] - groups_before[1]) / groups, 1)
    rate = max(1.0, round(saturated["per_second"] / 2, 1))
    [half] = drive(
        {**spec, "phases": [{"mode": "open", "rate": rate, "seconds": args.seconds}]},
        directory,
        server,
    )
    [quiet] = drive(
        {**spec, "phases": [{"mode": "open", "rate": QUIET_RATE, "seconds": args.seconds}]},
        directory,
        server,
    )
    return {"warm_up": warm, "saturation": saturated, "half_load": half, "quiet": quiet}


def grouping(base: str) -> tuple[float, float] | None:
    """The platform's (order groups, orders in them) so far, from /metrics (None elsewhere).
    With several API processes, those of the process that answers."""
    answer = httpx.get(f"{base}/metrics")
    if answer.status_code != 200:
        return None
    counted = dict.fromkeys(("issuance_order_groups_total", "issuance_grouped_orders_total"), 0.0)
    for line in answer.text.splitlines():
        name, _, value = line.partition(" ")
        if name in counted:
            counted[name] = float(value)
    return counted["issuance_order_groups_total"], counted["issuance_grouped_orders_total"]


def figures_of(run: dict[str, Any], cpu: float) -> dict[str, Any]:
    saturation = run["saturation"]
    return {
        "orders_per_second": saturation["per_second"],
        "server_cpu_ms_per_order": saturation["server_cpu_ms_per_request"],
        "server_cores_at_saturation": saturation["server_cores"],
        "mean_group_size_at_saturation": saturation.get("mean_group_size"),
        "driver_cpu_seconds_at_saturation": saturation["driver_cpu_seconds"],
        "server_cores_at_half": run["half_load"]["server_cores"],
        "saturation_p50_ms": run["saturation"]["p50_ms"],
        "saturation_p99_ms": run["saturation"]["p99_ms"],
        "half_load_rate": run["half_load"]["rate"],
        "p50_ms": run["half_load"]["p50_ms"],
        "p99_ms": run["half_load"]["p99_ms"],
        "quiet_rate": run["quiet"]["rate"],
        "quiet_p50_ms": run["quiet"]["p50_ms"],
        "quiet_p99_ms": run["quiet"]["p99_ms"],
        "server_cpu_ms_per_order_quiet": run["quiet"]["server_cpu_ms_per_request"],
        "non_2xx": {
            phase: {k: v for k, v in run[phase]["statuses"].items() if not k.startswith("2")}
            for phase in ("saturation", "half_load", "quiet")
        },
        "server_cpu_seconds": cpu,
    }


def platform_round(
    url: str, args: argparse.Namespace, directory: Path
) -> tuple[dict[str, Any], float]:
    """The platform on a fresh database: its phases, and its CPU seconds."""
    prepare_platform(url, directory)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_platform(url, directory, port, args.api_processes)
    try:
        wait_ready(base, server)
        headers = {"authorization": f"Bearer {token(base)}"}
        run = measure(base, headers, args, directory, server.pid)
    finally:
        cpu = stop(server)
    return run, cpu


def bare_round(
    args: argparse.Namespace, directory: Path, number: int, postgresql: str | None = None
) -> tuple[dict[str, Any], float]:
    """The bare endpoint on a new SQLite file (or a new table in PostgreSQL): its phases, and its
    CPU seconds (the endpoint's processes: PostgreSQL's own are not counted, as for the
    platform)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bare = start_bare(port, directory / f"bare-{number}.db", args.api_processes, postgresql)
    try:
        wait_ready(base, bare)
        run = measure(base, {}, args, directory, bare.pid)
    finally:
        cpu = stop(bare)
    return run, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument(
        "--api-processes", type=int, default=1, help="server processes (uvicorn workers)"
    )
    parser.add_argument("--seconds", type=float, default=10, help="per measured phase")
    parser.add_argument("--concurrency", type=int, default=64, help="connections at saturation")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="platform-then-bare rounds; the median round (by ratio) is reported",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    load_at_start = os.getloadavg()  # the machine is shared: say how busy it was

    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        url = args.database_url or f"sqlite:///{directory / 'platform.db'}"
        for number in range(args.rounds):
            if url.startswith("sqlite"):
                for stale in directory.glob("platform.db*"):
                    stale.unlink()
            platform_run, platform_cpu = platform_round(url, args, directory)
            bare_run, bare_cpu = bare_round(args, directory, number)
            ours = figures_of(platform_run, platform_cpu)
            bare = figures_of(bare_run, bare_cpu)
            ratio = ours["orders_per_second"] / bare["orders_per_second"]
            rounds.append({"platform": ours, "bare_endpoint": bare, "ratio": round(ratio, 2)})
            rounds[-1]["runs"] = {"platform": platform_run, "bare_endpoint": bare_run}
            if not url.startswith("sqlite"):  # the same database's ceiling too
                pg_run, pg_cpu = bare_round(args, directory, number, conninfo(url))
                pg = figures_of(pg_run, pg_cpu)
                rounds[-1]["bare_postgresql"] = pg
                rounds[-1]["ratio_to_bare_postgresql"] = round(
                    ours["orders_per_second"] / pg["orders_per_second"], 2
                )
                rounds[-1]["runs"]["bare_postgresql"] = pg_run
            print(
                f"round {number + 1}: {ours['orders_per_second']:,.0f} against "
                f"{bare['orders_per_second']:,.0f} orders/s, ratio {ratio:.2f}"
                + (
                    f"; bare on PostgreSQL {pg['orders_per_second']:,.0f} orders/s, ratio "
                    f"{rounds[-1]['ratio_to_bare_postgresql']:.2f}"
                    if "bare_postgresql" in rounds[-1]
                    else ""
                ),
                file=sys.stderr,
            )

    median = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    platform_figures, bare_figures = median["platform"], median["bare_endpoint"]
    figures = {
        "measured": provenance(),
        "database": url.split(":", 1)[0],
        "api_processes": args.api_processes,
        "load_average": [load_at_start[0], os.getloadavg()[0]],  # 1 min, at start and end
        "jwe": "ECDH-ES + A256GCM, P-256",
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "platform": platform_figures,
        "bare_endpoint": bare_figures,
        "ratio_to_ceiling": median["ratio"],
        "bare_postgresql": median.get("bare_postgresql"),
        "ratio_to_bare_postgresql": median.get("ratio_to_bare_postgresql"),
        "rounds": [
            {
                "orders_per_second": r["platform"]["orders_per_second"],
                "bare_orders_per_second": r["bare_endpoint"]["orders_per_second"],
                "ratio": r["ratio"],
                "bare_postgresql_orders_per_second": (r.get("bare_postgresql") or {}).get(
                    "orders_per_second"
                ),
                "ratio_to_bare_postgresql": r.get("ratio_to_bare_postgresql"),
            }
            for r in rounds
        ],
        "cpu_count": os.cpu_count(),
        "runs": median["runs"],
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "runs"}, indent=2))
    ratios = [r["ratio"] for r in rounds]
    print(
        f"intake ({figures['database']}, {args.api_processes} API process(es)): "
        f"{platform_figures['orders_per_second']:,.0f} orders/s "
        f"(p50 {platform_figures['p50_ms']} ms, p99 {platform_figures['p99_ms']} ms at "
        f"{platform_figures['half_load_rate']:,.0f}/s); bare endpoint "
        f"{bare_figures['orders_per_second']:,.0f} orders/s (p50 {bare_figures['p50_ms']} ms, "
        f"p99 {bare_figures['p99_ms']} ms); ratio {figures['ratio_to_ceiling']:.2f} "
        f"(median of {len(ratios)} rounds, {min(ratios):.2f} to {max(ratios):.2f}); server CPU "
        f"{platform_figures['server_cpu_ms_per_order']} ms/order (bare "
        f"{bare_figures['server_cpu_ms_per_order']}); at {QUIET_RATE:.0f}/s p50 / p99 "
        f"{platform_figures['quiet_p50_ms']} / {platform_figures['quiet_p99_ms']} ms (bare "
        f"{bare_figures['quiet_p50_ms']} / {bare_figures['quiet_p99_ms']})"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""`issuance demo`: the sandbox platform, the example issuer backend, and a few cards between them.

Two processes are started in a temporary directory (never `./var`), each with its own SQLite
database there: the platform, `issuance serve --sandbox` with its simulator and in-server
delivery on, and the reference issuer backend `examples/issuer_app.py` under uvicorn (so the
demo runs from a source checkout). DEMOBANK01's notification endpoint is pointed at the issuer's
port and, unless `--no-chaos`, sandbox chaos is turned on for it (duplicated, delayed and
reordered notifications). Cards are then ordered through the issuer kit's client, each on its
own simulator scenario, and the sandbox clock is moved one simulator step every `--pace`
seconds while a live table shows each card as the issuer sees it (its `GET /cards`, read from
its store) next to the platform's `productionStatus`, until every card has reached its final
state and the two views agree.

Exit code 0 when every card reached its final state and the issuer's view of each equals the
platform's, 1 when that is not so within `--timeout`, 2 when the demo could not run, 130 on
Ctrl-C, which stops both processes (and removes the temporary directory) first.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    import httpx
    from rich.live import Live
    from rich.table import Table

    from issuance.kit import AsyncIssuerClient

ISSUER = "DEMOBANK01"
CLIENT_ID, CLIENT_SECRET = "demobank01", "sandbox-secret-demobank01"  # the sandbox client
SCENARIOS = ("SUCCESS", "DATA_EXCEPTION", "ON_HOLD", "RETURNED", "OUT_OF_STOCK", "CANCELLED")
STEP_SECONDS = 5.0  # sandbox time per simulator step; the clock moves one step per --pace
CHAOS = {"duplicate": 0.3, "delaySeconds": 0.5, "reorder": True}
SETTLED_SHIPMENTS = frozenset({"DELIVERED", "RETURNED", "DESTROYED"})
EXAMPLE_APP = Path(__file__).resolve().parents[3] / "examples" / "issuer_app.py"
START_TIMEOUT = 60.0  # seconds for each process to answer

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

out = Console()
err = Console(stderr=True)


class DemoFailed(Exception):
    """The demo could not start or run; the message says why (exit code 2)."""


# --- the two processes ---


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def check(self) -> None:
        if self.process.poll() is not None:
            raise DemoFailed(
                f"the {self.name} exited ({self.process.returncode}); its log, {self.log}:\n"
                + self.tail()
            )

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _spawn(
    name: str, argv: list[str], env: dict[str, str], workdir: Path, children: list[Child]
) -> Child:
    """Start a process, logging to `{workdir}/{name}.log`; it joins `children` at once, so that
    an interruption from here on stops it too."""
    log = workdir / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink
        )
    children.append(Child(name, process, log))
    return children[-1]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_until_up(url: str, child: Child) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        child.check()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise DemoFailed(f"the {child.name} did not answer at {url} within {START_TIMEOUT:g} s")


def _start_platform(workdir: Path, port: int, pace: float, children: list[Child]) -> Child:
    env = {
        **os.environ,
        "ISSUANCE_DATABASE_URL": f"sqlite:///{workdir / 'platform.db'}",
        "ISSUANCE_KEYS_DIR": str(workdir / "keys"),
        "ISSUANCE_SIMULATOR": "true",
        "ISSUANCE_DELIVER_IN_SERVER": "true",
        "ISSUANCE_SIMULATOR_STEP_SECONDS": str(STEP_SECONDS),
        "ISSUANCE_SIMULATOR_INTERVAL_SECONDS": str(max(0.05, pace / 4)),
        "ISSUANCE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "ISSUANCE_LOG_JSON": "false",
    }
    argv = [sys.executable, "-m", "issuance", "serve", "--sandbox", "--port", str(port)]
    return _spawn("platform", argv, env, workdir, children)


def _signing_secret() -> str:
    """The Standard Webhooks secret of DEMOBANK01's endpoint in the sandbox configuration."""
    from issuance.cli.config_file import SANDBOX_CONFIG, read_config

    [demo] = [i for i in read_config(SANDBOX_CONFIG).issuers if i.issuer_id == ISSUER]
    return str(demo.notification_endpoints[0].signing_secrets[0])


def _point_demobank_at(workdir: Path, issuer_url: str) -> None:
    """DEMOBANK01's endpoint at the example issuer (the sandbox file says :9001).

    Loaded into the platform's database once `serve --sandbox` has loaded the sandbox file; the
    running server reads the configuration again before each delivery round."""
    from issuance.cli.config_file import SANDBOX_CONFIG, read_config
    from issuance.platform import Platform
    from issuance.services.configuration import load_config
    from issuance.settings import Settings

    config = read_config(SANDBOX_CONFIG)
    [demo] = [issuer for issuer in config.issuers if issuer.issuer_id == ISSUER]
    [endpoint] = demo.notification_endpoints
    moved = endpoint.model_copy(update={"base_url": issuer_url})
    issuers = tuple(
        issuer.model_copy(update={"notification_endpoints": (moved,)})
        if issuer.issuer_id == ISSUER
        else issuer
        for issuer in config.issuers
    )
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'platform.db'}",
        keys_dir=workdir / "keys",
        sandbox=True,
    )
    platform = Platform.build(settings)
    try:
        load_config(config.model_copy(update={"issuers": issuers}), uow=platform.uow())
    finally:
        platform.close()


def _start_issuer(
    workdir: Path, port: int, platform_url: str, secret: str, children: list[Child]
) -> Child:
    if not EXAMPLE_APP.exists():
        raise DemoFailed(f"{EXAMPLE_APP} is missing: run the demo from a source checkout")
    env = {
        **os.environ,
        "ISSUER_PLATFORM_URL": platform_url,
        "ISSUER_ID": ISSUER,
        "ISSUER_CLIENT_ID": CLIENT_ID,
        "ISSUER_CLIENT_SECRET": CLIENT_SECRET,
        "ISSUER_SIGNING_SECRET": secret,
        "ISSUER_DATABASE_URL": f"sqlite:///{workdir / 'issuer.db'}",
    }
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        f"{EXAMPLE_APP.stem}:app",
        "--app-dir",
        str(EXAMPLE_APP.parent),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return _spawn("issuer", argv, env, workdir, children)


# --- the cards, as each side sees them ---


@dataclass
class Card:
    card_id: str
    scenario: str
    platform: dict[str, Any] | None = None  # latest operation from productionStatus (wire JSON)
    issuer: dict[str, Any] | None = None  # the issuer's stored operation (its GET /cards)
    changes_handled: int = 0

    @property
    def equal(self) -> bool:
        return self.platform is not None and self.issuer == self.platform

    @property
    def settled(self) -> bool:
        """The simulator will not move it again: failed, or delivered / returned."""
        if self.platform is None:
            return False
        shipment = self.platform["details"].get("shipment") or {}
        return self.platform["status"] == "FAILED" or shipment.get("status") in SETTLED_SHIPMENTS

    def report(self) -> dict[str, Any]:
        return {
            "cardId": self.card_id,
            "scenario": self.scenario,
            "equal": self.equal,
            "platform": _brief(self.platform),
            "issuer": _brief(self.issuer),
            "changesHandled": self.changes_handled,
        }


def _brief(operation: dict[str, Any] | None) -> dict[str, Any] | None:
    if operation is None:
        return None
    details = operation["details"]
    return {
        "status": operation["status"],
        "step": details["status"],
        "shipment": (details.get("shipment") or {}).get("status"),
        "onHold": details.get("onHold"),
        "sequence": operation.get("sequence"),
    }


def _pan(index: int) -> str:
    """A Luhn-valid test PAN per card."""
    body = f"453991{index:09d}"
    total = 0
    for position, digit in enumerate(reversed(body)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


@dataclass
class Session:
    """One run of the demo against the two processes."""

    platform_url: str
    issuer_url: str
    children: list[Child]
    count: int
    chaos: bool
    pace: float
    timeout: float
    cards: list[Card] = field(default_factory=list)
    advanced: float = 0.0  # sandbox seconds
    started: float = field(default_factory=time.monotonic)

    async def run(self, show: bool) -> None:
        import httpx

        from issuance.kit import IssuanceError

        try:
            await self._run(show)
        except (httpx.HTTPError, IssuanceError) as error:
            raise DemoFailed(f"{type(error).__name__}: {error}") from error

    async def _run(self, show: bool) -> None:
        import httpx
        from rich.live import Live

        from issuance.kit import AsyncIssuerClient, ClientSecret

        async with (
            httpx.AsyncClient(base_url=self.platform_url, timeout=10) as platform,
            httpx.AsyncClient(base_url=self.issuer_url, timeout=10) as issuer,
            AsyncIssuerClient(
                self.platform_url, ISSUER, ClientSecret(CLIENT_ID, CLIENT_SECRET)
            ) as d1,
        ):
            headers = await _token(platform)
            if self.chaos:
                path = f"/sandbox/v1/issuers/{ISSUER}/endpoints/main/chaos"
                (await platform.put(path, json=CHAOS, headers=headers)).raise_for_status()
            await self._order(platform, d1, headers)
            if not show:
                await self._follow(platform, issuer, d1, headers, None)
                return
            with Live(self.table(), console=out, refresh_per_second=8) as live:
                await self._follow(platform, issuer, d1, headers, live)

    async def _order(
        self, platform: httpx.AsyncClient, d1: AsyncIssuerClient, headers: dict[str, str]
    ) -> None:
        run = secrets.token_hex(3)
        for index in range(self.count):
            card = Card(f"card-demo-{run}-{index + 1:02d}", SCENARIOS[index % len(SCENARIOS)])
            path = f"/sandbox/v1/issuers/{ISSUER}/physicalCards/{card.card_id}/scenario"
            scenario = {"scenario": card.scenario}
            (await platform.put(path, json=scenario, headers=headers)).raise_for_status()
            card_data = {"pan": _pan(index + 1), "exp": "2911", "name": "ADA LOVELACE"}
            await d1.order_card(card.card_id, ORDER, card_data=card_data)
            self.cards.append(card)

    async def _follow(
        self,
        platform: httpx.AsyncClient,
        issuer: httpx.AsyncClient,
        d1: AsyncIssuerClient,
        headers: dict[str, str],
        live: Live | None,
    ) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            for child in self.children:
                child.check()
            await self._refresh(issuer, d1)
            if live is not None:
                live.update(self.table())
            if self.succeeded or time.monotonic() > deadline:
                return
            if not self.settled:
                answer = await platform.post(
                    "/sandbox/v1/clock:advance", json={"seconds": STEP_SECONDS}, headers=headers
                )
                answer.raise_for_status()
                self.advanced += STEP_SECONDS
            await asyncio.sleep(min(self.pace, max(0.0, deadline - time.monotonic())))

    async def _refresh(self, issuer: httpx.AsyncClient, d1: AsyncIssuerClient) -> None:
        statuses = await asyncio.gather(*(d1.production_status(c.card_id) for c in self.cards))
        answer = await issuer.get("/cards")
        answer.raise_for_status()
        known = {row["cardId"]: row for row in answer.json()}  # the latest operation per card
        for card, operations in zip(self.cards, statuses, strict=True):
            card.platform = (
                operations[-1].model_dump(mode="json", by_alias=True, exclude_none=True)
                if operations
                else None
            )
            row = known.get(card.card_id)
            card.issuer = row["operation"] if row else None
            card.changes_handled = int(row["changesHandled"]) if row else 0

    @property
    def equal(self) -> bool:
        return bool(self.cards) and all(card.equal for card in self.cards)

    def table(self) -> Table:
        from rich.table import Table

        chaos = (
            f"chaos: duplicate {CHAOS['duplicate']:.0%}, delay ≤ {CHAOS['delaySeconds']} s, reorder"
            if self.chaos
            else "no chaos"
        )
        table = Table(
            title=f"DEMOBANK01's cards: the issuer's view next to the platform's ({chaos})",
            caption=f"{time.monotonic() - self.started:.1f} s, "
            f"sandbox clock +{self.advanced / 60:.1f} min",
        )
        for column in ("card", "scenario", "issuer sees", "seq", "handled", "platform", "seq", ""):
            table.add_column(column, no_wrap=True)
        for card in self.cards:
            mark = "[green]=[/green]" if card.equal else "[yellow]…[/yellow]"
            issuer, platform = _brief(card.issuer), _brief(card.platform)
            table.add_row(
                card.card_id,
                card.scenario,
                _describe(issuer),
                str(issuer["sequence"]) if issuer else "",
                str(card.changes_handled),
                _describe(platform),
                str(platform["sequence"]) if platform else "",
                mark,
            )
        return table

    @property
    def settled(self) -> bool:
        return bool(self.cards) and all(card.settled for card in self.cards)

    @property
    def succeeded(self) -> bool:
        """Every card at its final state, and the issuer's view of each equal to the platform's."""
        return self.settled and self.equal

    def summary(self) -> str:
        differ = [card.card_id for card in self.cards if not card.equal]
        moving = [card.card_id for card in self.cards if not card.settled]
        lines = []
        if moving:
            lines.append(
                f"[red]{len(moving)} card(s) did not reach their final state within "
                f"{self.timeout:g} s[/red]: {', '.join(moving)}"
            )
        if differ:
            lines.append(
                f"[red]The issuer's view differs from the platform's for {len(differ)} of "
                f"{len(self.cards)} cards[/red]: {', '.join(differ)}"
            )
        else:
            lines.append(
                f"[green]The issuer's view equals the platform's for all {len(self.cards)} "
                f"cards[/green] ({sum(c.changes_handled for c in self.cards)} changes handled, "
                f"{time.monotonic() - self.started:.1f} s)"
            )
        return "\n".join(lines)

    def report(self) -> dict[str, Any]:
        return {
            "equal": self.equal,
            "settled": self.settled,
            "cards": [card.report() for card in self.cards],
            "chaos": CHAOS if self.chaos else None,
            "seconds": round(time.monotonic() - self.started, 1),
            "platformUrl": self.platform_url,
            "issuerUrl": self.issuer_url,
        }


def _describe(brief: dict[str, Any] | None) -> str:
    if brief is None:
        return "[dim]nothing yet[/dim]"
    text = str(brief["step"])
    if brief["shipment"]:
        text += f" / {brief['shipment']}"
    if brief["onHold"]:
        text += f" (held: {brief['onHold']})"
    return text


async def _token(platform: httpx.AsyncClient) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    answer = await platform.post("/authz/v1/oauth2/token", data=form)
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


# --- the command ---


@contextmanager
def _workdir(chosen: Path | None) -> Iterator[Path]:
    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=True)
        yield chosen.resolve()
        return
    made = Path(tempfile.mkdtemp(prefix="issuance-demo-"))
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def _run(
    directory: Path,
    port: int,
    issuer_port: int,
    cards: int,
    chaos: bool,
    pace: float,
    timeout: float,
    as_json: bool,
) -> Session:
    """Both processes up, the cards ordered and followed to the end; both stopped whatever
    happens (Ctrl-C included)."""
    children: list[Child] = []
    platform_url, issuer_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{issuer_port}"
    try:  # the two start side by side
        platform = _start_platform(directory, port, pace, children)
        issuer = _start_issuer(directory, issuer_port, platform_url, _signing_secret(), children)
        _wait_until_up(f"{platform_url}/health", platform)
        _point_demobank_at(directory, issuer_url)
        _wait_until_up(f"{issuer_url}/cards", issuer)
        session = Session(platform_url, issuer_url, children, cards, chaos, pace, timeout)
        asyncio.run(session.run(show=not as_json))
    finally:
        for child in reversed(children):
            child.stop()
    return session


def demo(
    cards: Annotated[int, typer.Option(help="How many cards to order.", min=1, max=60)] = 6,
    port: Annotated[int, typer.Option(help="The platform's port.")] = 8000,
    issuer_port: Annotated[int, typer.Option(help="The example issuer's port.")] = 9001,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final comparison as JSON, no live table.")
    ] = False,
    chaos: Annotated[
        bool, typer.Option(help="Duplicate, delay and reorder the notifications (sandbox chaos).")
    ] = True,
    pace: Annotated[
        float, typer.Option(help="Real seconds between two simulator steps.", min=0.05, max=10)
    ] = 0.5,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the views to agree.", min=1)
    ] = 45.0,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Keep databases and logs here (default: a temporary directory)."),
    ] = None,
) -> None:
    """Run the sandbox and the example issuer, order cards, watch both views converge.

    Exit code 0 when every card reached its final state with the issuer's view equal to the
    platform's, 1 otherwise. Both run in a temporary directory (never ./var), removed at the end.
    """
    for what, number in (("--port", port), ("--issuer-port", issuer_port)):
        if not _port_free(number):
            err.print(f"[red]port {number} is in use[/red]: choose another with {what}")
            raise typer.Exit(code=2)
    try:
        with _workdir(workdir) as directory:
            if not as_json:
                err.print(f"starting the sandbox platform and the example issuer in {directory}")
            session = _run(directory, port, issuer_port, cards, chaos, pace, timeout, as_json)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]: the platform and the issuer are stopped")
        raise typer.Exit(code=130) from None
    except DemoFailed as error:
        err.print(f"[red]the demo could not run[/red]: {error}")
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(session.report(), indent=2))
    else:
        out.print(session.summary())
    if not session.succeeded:
        raise typer.Exit(code=1)

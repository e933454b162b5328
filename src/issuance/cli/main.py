"""`issuance`: run the platform and administer it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console

from issuance.cli.batches import batches_app
from issuance.cli.config_file import SANDBOX_CONFIG, format_errors, read_config
from issuance.cli.containers import containers_app
from issuance.cli.demo import demo
from issuance.cli.keys import keys_app
from issuance.cli.notifications import notifications_app
from issuance.cli.orders import orders_app, stock_app
from issuance.settings import Settings

app = typer.Typer(
    help="Central card issuance speaking the Thales D1 API.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Load and show the program configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(orders_app, name="orders")
app.add_typer(stock_app, name="stock")
app.add_typer(containers_app, name="containers")
app.add_typer(batches_app, name="batches")
app.add_typer(notifications_app, name="notifications")
app.command()(demo)
app.add_typer(keys_app, name="keys")
docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")


@docs_app.command("lifecycle")
def docs_lifecycle(
    write: Annotated[
        Path | None, typer.Option(help="Replace the generated block in this file.")
    ] = None,
) -> None:
    """The order lifecycle as Mermaid diagrams, drawn from the transition tables."""
    from issuance.domain.lifecycle import readme_section, replace_section

    if write is None:
        typer.echo(readme_section())
        return
    write.write_text(replace_section(write.read_text()))
    err.print(f"[green]updated[/green] {write}")


err = Console(stderr=True)


def _settings(sandbox: bool = False) -> Settings:
    return Settings(sandbox=True) if sandbox else Settings()


@app.command()
def migrate() -> None:
    """Upgrade the database (ISSUANCE_DATABASE_URL) to the latest schema."""
    from issuance.db.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    err.print(
        f"[green]database at the latest schema[/green] ({settings.database_url.split('@')[-1]})"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    sandbox: Annotated[
        bool,
        typer.Option(help="Generate missing keys, migrate and load the sandbox configuration."),
    ] = False,
    workers: Annotated[int, typer.Option(help="API processes (PostgreSQL for more than one).")] = 1,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this certificate.")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="Its private key.")] = None,
    ssl_ca_certs: Annotated[
        Path | None, typer.Option(help="CA certificates that client certificates must chain to.")
    ] = None,
    require_client_cert: Annotated[
        bool, typer.Option(help="Refuse connections without a verified client certificate.")
    ] = False,
) -> None:
    """Serve the D1 API over HTTP, or HTTPS with client certificates (mutual TLS)."""
    import uvicorn

    from issuance.cli.tls import TlsOptions
    from issuance.logging import configure_logging

    tls = (
        TlsOptions(ssl_certfile, ssl_keyfile, ssl_ca_certs, require_client_cert)
        if ssl_certfile
        else None
    )
    settings = _settings(sandbox)
    configure_logging(json_output=settings.json_logs)
    if workers > 1 and settings.database_url.startswith("sqlite"):
        err.print(
            f"[yellow]warning[/yellow]: {workers} API processes on SQLite take turns to write "
            "(one writer at a time across processes); PostgreSQL is what scales out"
        )
    if settings.sandbox:
        _prepare_sandbox(settings)
    scheme = "https" if tls else "http"
    err.print(
        f"[bold]issuance[/bold] on {scheme}://{host}:{port}  (docs: {scheme}://{host}:{port}/docs)"
    )
    uvicorn.run(
        "issuance.cli.asgi:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        log_config=None,  # uvicorn's records go through our logging, redaction included
        env_file=None,
        **(tls.uvicorn_options() if tls else {}),
    )


def _prepare_sandbox(settings: Settings) -> None:
    import os

    from issuance.db.migrate import upgrade
    from issuance.platform import Platform
    from issuance.services.configuration import load_config

    os.environ["ISSUANCE_SANDBOX"] = "true"  # the server processes read the same settings
    upgrade(settings.database_url)
    platform = Platform.build(settings)
    try:
        config = read_config(SANDBOX_CONFIG)
        load_config(config, uow=platform.uow())
    finally:
        platform.close()
    from issuance.security.centre_keys import centre_public_key

    for centre in config.personalization_centres:  # the machines' keys, beside the platform's
        centre_public_key(centre, keys_dir=settings.keys_dir, generate=True)


@app.command()
def worker(
    interval: Annotated[
        float, typer.Option(help="Seconds between two schedule rounds.", min=0.1)
    ] = 30.0,
    once: Annotated[
        bool, typer.Option(help="Run one round of everything and exit (for cron).")
    ] = False,
    concurrency: Annotated[
        int, typer.Option(help="Notification POSTs in flight at once.", min=1, max=1024)
    ] = 64,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve this worker's Prometheus metrics (latency histograms) here."),
    ] = None,
) -> None:
    """Deliver notifications; batch prepared orders after each cut-off; flag late orders; drop
    expired data (sensitive data past its retention, batch answers past their 24 h).

    Run as many as you like on PostgreSQL: each delivery is claimed by one worker at a time.
    SIGTERM (or Ctrl-C) finishes the POSTs in flight and settles them before exiting.
    """
    import signal
    import threading

    import structlog

    from issuance.cli.asgi import settle_garbage_collector
    from issuance.db.batch_replies import SqlBatchReplies
    from issuance.delivery.worker import DeliveryWorker
    from issuance.logging import configure_logging
    from issuance.platform import Platform
    from issuance.services import workflow
    from issuance.services.batch_ordering import REPLAY_WINDOW
    from issuance.services.retention import purge_expired

    settings = _settings()
    configure_logging(json_output=settings.json_logs)
    platform = Platform.build(settings)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    deliveries = DeliveryWorker(platform, concurrency=concurrency)
    settle_garbage_collector()  # no long collection pauses in the middle of POSTs

    def schedule() -> None:
        workflow.batch_production(uow=platform.uow(), clock=platform.clock, after_cut_off=True)
        workflow.review_sla(uow=platform.uow(), clock=platform.clock)
        purge_expired(uow=platform.uow(), clock=platform.clock, retention=settings.retention)
        SqlBatchReplies(platform.engine).forget(before=platform.clock() - REPLAY_WINDOW)

    try:
        if once:
            schedule()
            err.print(f"{deliveries.run_once()} notification(s) attempted")
            return
        if metrics_port is not None:
            from prometheus_client import start_http_server

            from issuance.delivery.metrics import REGISTRY

            start_http_server(metrics_port, addr="127.0.0.1", registry=REGISTRY)
        pump = threading.Thread(target=deliveries.run, args=(stopping,), name="delivery")
        pump.start()
        while not stopping.is_set():
            try:
                schedule()
            except Exception:  # a failed schedule round must not stop delivery
                structlog.get_logger("issuance.worker").exception("schedule round failed")
            stopping.wait(interval)
        pump.join()
    finally:
        platform.close()


@config_app.command("load")
def config_load(
    file: Annotated[
        Path,
        typer.Argument(
            help="YAML configuration (see docs/configuration.md).", exists=True, dir_okay=False
        ),
    ],
    check: Annotated[bool, typer.Option("--check", help="Validate only; change nothing.")] = False,
) -> None:
    """Validate FILE and load it: issuers, clients, programs, centres."""
    from issuance.platform import Platform
    from issuance.services.configuration import load_config

    try:
        config = read_config(file)
    except (ValidationError, yaml.YAMLError, ValueError) as error:
        err.print(f"[red]{file} is not a valid configuration:[/red]")
        for line in format_errors(error):
            err.print(f"  {line}")
        raise typer.Exit(code=2) from None
    if check:
        err.print(f"[green]{file} is valid[/green]: {len(config.issuers)} issuer(s)")
        return
    platform = Platform.build(_settings())
    try:
        load_config(config, uow=platform.uow())
    finally:
        platform.close()
    err.print(
        f"[green]loaded[/green] {len(config.issuers)} issuer(s), {len(config.personalization_centres)} centre(s)"
    )


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML.")] = False,
) -> None:
    """Print the configuration currently loaded (client secrets are never shown)."""
    from issuance.platform import Platform
    from issuance.services.configuration import current_config

    platform = Platform.build(_settings())
    try:
        document = current_config(uow=platform.reader())
    finally:
        platform.close()
    if document is None:
        err.print("[yellow]no configuration loaded yet[/yellow] (issuance config load FILE)")
        raise typer.Exit(code=1)
    typer.echo(
        json.dumps(document, indent=2) if as_json else yaml.safe_dump(document, sort_keys=False)
    )

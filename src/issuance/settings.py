"""Settings: one typed class read from `ISSUANCE_*` variables, built once by each entry point."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from issuance.domain.retention import Retention

DEFAULT_DATABASE_URL = "sqlite:///var/issuance.db"
DEFAULT_KEYS_DIR = Path("var/keys")
REQUEST_THREADS = 64


class Settings(BaseSettings):
    """Everything a process needs to know about its surroundings.

    The defaults make `make run` work on a fresh machine: an SQLite file and generated keys under
    `./var/`. Outside sandbox mode the keys must exist already; the platform never invents
    production key material.
    """

    model_config = SettingsConfigDict(env_prefix="ISSUANCE_", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    keys_dir: Path = DEFAULT_KEYS_DIR
    sandbox: bool = False
    token_ttl: int = Field(default=900, ge=60, le=86_400)  # seconds
    token_issuer: str = "issuance"  # noqa: S105 (a name, not a secret)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)  # 1000 cards fit easily
    # Threads serving the synchronous routes, per API process (anyio's default is 40); the
    # database pool grows with them (db/engine.py). A single-card order holds none while it
    # waits for its group (services/grouped_ordering.py).
    request_threads: int = Field(default=REQUEST_THREADS, ge=1, le=1000)
    public_base_url: str = "http://127.0.0.1:8000"
    log_json: bool | None = None  # None: JSON unless standard output is a terminal
    simulator: bool | None = None  # the sandbox bureau; None: on in sandbox mode, off otherwise
    simulator_step_seconds: float = Field(default=5.0, gt=0)  # sandbox time between two steps
    simulator_interval_seconds: float = Field(default=1.0, gt=0)  # real time between two rounds

    # A dead worker's claims free up after this; keep it above every endpoint's timeout (≤ 30 s),
    # since a worker only starts a POST it can finish within its lease.
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    deliver_in_server: bool | None = None  # deliver notifications from `serve`; None: in sandbox
    # An endpoint failing without a break is warned about after this, then disabled.
    endpoint_warn_after_hours: float = Field(default=12.0, gt=0)
    endpoint_disable_after_hours: float = Field(default=72.0, gt=0)

    # Sensitive data (README, "Sensitive data"). Master keys: base64url 32-byte keys, comma-
    # separated, the first wraps; else master-keys.json. Retention: hours card data is kept once
    # the card is personalized (or has failed); 0 destroys it in that very change.
    master_key: SecretStr | None = None
    sensitive_retention_hours: float = Field(default=0.0, ge=0)
    log_bodies: bool | None = None  # redacted request/response bodies; None: in sandbox
    # Uploaded order files (POST …/orderFiles) and their reports; None: beside keys_dir
    # (`var/order-files`). An upload is streamed to disk; above the limit it is refused (413).
    order_files_dir: Path | None = None
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)  # bytes
    imports_in_server: bool = True  # run uploaded imports in a thread of `serve`
    import_report_days: float = Field(default=30.0, gt=0)  # kept after the import ended
    # Behind a proxy that terminates mTLS: the header carrying the SHA-256 (hex) of the verified
    # client certificate. Only set it if the proxy always overwrites that header.
    client_certificate_header: str | None = None

    @property
    def delivery_in_server(self) -> bool:
        return self.sandbox if self.deliver_in_server is None else self.deliver_in_server

    @property
    def order_files_directory(self) -> Path:
        return self.order_files_dir or self.keys_dir.parent / "order-files"

    @property
    def json_logs(self) -> bool:
        """JSON lines for a collector (a pipe, a file, a container log); readable in a terminal."""
        return not sys.stdout.isatty() if self.log_json is None else self.log_json

    @property
    def body_logging(self) -> bool:
        return self.sandbox if self.log_bodies is None else self.log_bodies

    @property
    def retention(self) -> Retention:
        return Retention(timedelta(hours=self.sensitive_retention_hours))

    @property
    def simulator_enabled(self) -> bool:
        return self.sandbox if self.simulator is None else self.simulator

    @model_validator(mode="after")
    def _sqlite_parent_is_relative_to_cwd(self) -> Settings:
        if self.database_url.startswith("sqlite:///") and ":memory:" in self.database_url:
            raise ValueError("in-memory SQLite cannot be shared between connections; use a file")
        return self

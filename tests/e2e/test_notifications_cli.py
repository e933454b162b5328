"""`issuance notifications ping`: the real binary sends a signed test notification."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.db.endpoint_health import disable
from issuance.platform import Platform
from issuance.services.configuration import load_config
from tests.factories import DEMO
from tests.receiver import Receiver

ISSUANCE = Path(sys.executable).parent / "issuance"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as listening:
        yield listening


def _run(*args: str, platform: Platform, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "ISSUANCE_DATABASE_URL": platform.settings.database_url,
        "ISSUANCE_KEYS_DIR": str(platform.settings.keys_dir),
        "ISSUANCE_SANDBOX": "true",
    }
    return subprocess.run(
        [str(ISSUANCE), *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _point_demobank_at(platform: Platform, url: str) -> str:
    """DEMOBANK01's sandbox endpoint `main`, moved to `url`; its signing secret."""
    sandbox = read_config(SANDBOX_CONFIG)
    demo = next(i for i in sandbox.issuers if i.issuer_id == DEMO)
    [main] = demo.notification_endpoints
    moved = demo.model_copy(
        update={"notification_endpoints": (main.model_copy(update={"base_url": url}),)}
    )
    issuers = tuple(moved if i.issuer_id == DEMO else i for i in sandbox.issuers)
    load_config(sandbox.model_copy(update={"issuers": issuers}), uow=platform.uow())
    return main.signing_secrets[0]


def test_ping_json_reports_what_the_endpoint_answered(
    platform: Platform, tmp_path: Path, receiver: Receiver
) -> None:
    secret = _point_demobank_at(platform, receiver.url)

    pinged = _run("notifications", "ping", DEMO, "main", "--json", platform=platform, cwd=tmp_path)
    assert pinged.returncode == 0, pinged.stderr
    result = json.loads(pinged.stdout)
    assert (result["ok"], result["statusCode"], result["error"]) == (True, 204, None)
    [request] = receiver.received
    assert request.headers["webhook-id"] == result["messageId"]
    assert Webhook(secret).verify(request.body, request.headers) == {"operations": []}

    receiver.answer(500)
    failed = _run("notifications", "ping", DEMO, "main", "--json", platform=platform, cwd=tmp_path)
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["statusCode"] == 500

    unknown = _run("notifications", "ping", DEMO, "nowhere", platform=platform, cwd=tmp_path)
    assert unknown.returncode == 2
    assert "no notification endpoint nowhere" in unknown.stderr
    assert len(receiver.received) == 2


def test_endpoints_json_shows_each_endpoints_state_and_streak(
    platform: Platform, tmp_path: Path
) -> None:
    _point_demobank_at(platform, "http://127.0.0.1:9")
    with Session(platform.engine) as session, session.begin():
        disable(session, DEMO, "main", at=datetime.now(UTC), reason="410 Gone answered for event 7")

    listed = _run("notifications", "endpoints", "--json", platform=platform, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    [main] = [e for e in json.loads(listed.stdout) if e["issuerId"] == DEMO]
    assert (main["endpointId"], main["state"], main["reason"]) == (
        "main",
        "disabled",
        "410 Gone answered for event 7",
    )

    enabled = _run("notifications", "enable", DEMO, "main", platform=platform, cwd=tmp_path)
    assert enabled.returncode == 0, enabled.stderr
    listed = _run("notifications", "endpoints", "--json", platform=platform, cwd=tmp_path)
    [main] = [e for e in json.loads(listed.stdout) if e["issuerId"] == DEMO]
    assert (main["state"], main["disabledAt"], main["consecutiveFailures"]) == ("enabled", None, 0)

"""The console of a platform that is not a sandbox: no simulator controls anywhere."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from issuance.security.keys import load_key_ring
from issuance.settings import Settings
from tests.console.conftest import csrf_of


@pytest.fixture
def settings(database_url: str, keys_dir: Path) -> Settings:
    """Production mode; its keys are made first, since outside the sandbox they must exist."""
    load_key_ring(keys_dir, generate=True)
    return Settings(database_url=database_url, keys_dir=keys_dir, sandbox=False)


def test_outside_the_sandbox_there_are_no_simulator_controls(console: httpx.Client) -> None:
    pipeline = console.get("/console")
    assert pipeline.status_code == 200
    assert "/console/sandbox" not in pipeline.text
    assert "Sandbox:" not in pipeline.text
    assert console.get("/console/sandbox").status_code == 404
    refused = console.post("/console/sandbox/tick", data={"csrf": csrf_of(pipeline.text)})
    assert "exist in the sandbox only" in console.get(refused.headers["location"]).text

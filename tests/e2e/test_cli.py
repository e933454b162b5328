"""`issuance config load / show` and `issuance migrate` from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from issuance.cli.config_file import SANDBOX_CONFIG

ISSUANCE = Path(sys.executable).parent / "issuance"


def _run(*args: str, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "ISSUANCE_DATABASE_URL": database_url,
        "ISSUANCE_KEYS_DIR": str(cwd / "keys"),
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


def test_load_then_show_the_configuration(database_url: str, tmp_path: Path) -> None:
    assert _run("migrate", database_url=database_url, cwd=tmp_path).returncode == 0
    loaded = _run("config", "load", str(SANDBOX_CONFIG), database_url=database_url, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert "2 issuer(s)" in loaded.stderr

    shown = _run("config", "show", "--json", database_url=database_url, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert [issuer["issuerId"] for issuer in document["issuers"]] == ["DEMOBANK01", "OTHERBNK02"]
    assert "sandbox-secret" not in shown.stdout
    assert document["issuers"][0]["clients"][0]["secretHash"].startswith("sha256:")


def test_an_invalid_file_is_explained_field_by_field(database_url: str, tmp_path: Path) -> None:
    document = yaml.safe_load(SANDBOX_CONFIG.read_text())
    document["issuers"][0]["programs"][0]["shippingMethodIds"].append("pigeon")
    document["issuers"][1]["programs"][0]["allowedCountries"] = ["XX"]
    del document["issuers"][1]["cardProducts"][0]["binRanges"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(document))

    result = _run("config", "load", str(broken), database_url=database_url, cwd=tmp_path)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "issuers[1].cardProducts[0].binRanges: Field required" in message
    assert "issuers[1].programs[0].allowedCountries[0]" in message
    shown = _run("config", "show", database_url=database_url, cwd=tmp_path)
    assert shown.returncode == 1  # nothing was loaded


def test_a_broken_reference_is_reported_with_its_path(database_url: str, tmp_path: Path) -> None:
    document = yaml.safe_load(SANDBOX_CONFIG.read_text())
    document["issuers"][0]["programs"][0]["shippingMethodIds"].append("pigeon")
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(document))
    result = _run("config", "load", "--check", str(broken), database_url=database_url, cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "issuers[0].programs[0].shippingMethodIds[3]: unknown shipping method 'pigeon'"
        in " ".join(result.stderr.split())
    )


def test_a_server_process_exempts_what_start_up_built_from_garbage_collection(
    tmp_path: Path,
) -> None:
    """The collector's long pauses were the status read's p99: start-up objects are frozen. Its
    young collections cost 1.5% of an order: they run every 10,000 allocations, not 700."""
    probe = (
        "import gc; from issuance.cli.asgi import app_from_environment; "
        "app_from_environment(); print(gc.get_threshold()[0], gc.get_freeze_count())"
    )
    env = {
        **os.environ,
        "ISSUANCE_SANDBOX": "true",
        "ISSUANCE_KEYS_DIR": str(tmp_path / "keys"),
        "ISSUANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'probe.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    young, frozen = map(int, done.stdout.strip().splitlines()[-1].split())
    assert frozen > 50_000
    assert young == 10_000

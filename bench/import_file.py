"""Throughput and memory of `issuance orders import` on a generated N-line JSON Lines file.

    .venv/bin/python bench/import_file.py N [--database-url URL] [--batch-size B]

Builds a fresh database (a temporary SQLite file unless --database-url names an empty, migrated
one), loads the sandbox configuration, writes N valid DEMOBANK01 orders (each with its own JWE,
as an issuer would send them), then runs the real binary on the file and reports its wall time,
cards/s and peak RSS (the child's ru_maxrss). File generation is timed apart: it is not import.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwe
from joserfc.jwk import ECKey

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.contract.sensitive import luhn_ok
from issuance.db.migrate import upgrade
from issuance.platform import Platform
from issuance.services.configuration import load_config
from issuance.settings import Settings

ISSUANCE = Path(sys.executable).parent / "issuance"
ADDRESS = {"line1": "10 Rue de Rivoli", "zipCode": "75001", "city": "Paris", "countryCode": "FR"}


def _pan(number: int) -> str:
    body = f"45399100{number:07d}"
    return next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))


def _line(number: int, key: ECKey) -> str:
    card = {"pan": _pan(number), "exp": "2911", "name": "ADA LOVELACE", "cvv2": "123"}
    header = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key.kid}
    body: dict[str, Any] = {
        "cardId": f"bench-{number:08d}",
        "issuerRequestId": f"bench-{uuid.uuid4().hex}",
        "cardProductId": "DEMO-DEBIT",
        "services": {"issuance": "RENEWAL", "delivery": "laposte-lettre"},
        "encryptedData": jwe.encrypt_compact(header, json.dumps(card), key),
        "paymentApplication": {
            "config": "VISA-DEBIT",
            "odaKeyIndex": "1",
            "derivationKeyIndex": "2",
        },
        "shipment": {"deliveryAddress": ADDRESS, "individualAddress": ADDRESS},
    }
    return json.dumps(body) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lines", type=int)
    parser.add_argument("--database-url")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        _bench(args, work)
    finally:
        shutil.rmtree(work)


def _bench(args: argparse.Namespace, work: Path) -> None:
    url = args.database_url or f"sqlite:///{work / 'issuance.db'}"
    if args.database_url is None:
        upgrade(url)
    platform = Platform.build(Settings(database_url=url, keys_dir=work / "keys", sandbox=True))
    load_config(read_config(SANDBOX_CONFIG), uow=platform.uow())
    key = ECKey.import_key(platform.keys.public_jwks()["keys"][0])
    platform.close()

    started = time.monotonic()
    path = work / "orders.jsonl"
    with path.open("w") as out:
        for number in range(args.lines):
            out.write(_line(number, key))
    generated = time.monotonic() - started

    env = {**os.environ, "ISSUANCE_DATABASE_URL": url, "ISSUANCE_KEYS_DIR": str(work / "keys")}
    command = [str(ISSUANCE), "orders", "import", str(path), "--issuer", "DEMOBANK01", "--json"]
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our own binary, our own arguments
        [*command, "--batch-size", str(args.batch_size)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.monotonic() - started
    summary = json.loads(done.stdout)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "lines": args.lines,
                "database": url.split(":", 1)[0],
                "fileMB": round(path.stat().st_size / 1e6, 1),
                "generationSeconds": round(generated, 1),
                "importWallSeconds": round(wall, 1),
                "accepted": summary["accepted"],
                "refused": summary["refused"],
                "cardsPerSecond": summary["cardsPerSecond"],
                "peakRssMB": round(peak_kib / 1024, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

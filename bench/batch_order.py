"""One batch order of N cards through the batch service: chunked transactions vs card by card.

    .venv/bin/python bench/batch_order.py [N] [--database-url URL] [--profile]

Builds a fresh database (a temporary SQLite file unless --database-url names an empty, migrated
one), loads the sandbox configuration, encrypts N DEMOBANK01 cards, then times the intake (JWE
decryption, checks, sealing: the same either way) apart from the placing, done once as the batch
route does it (`BatchOrdering`, CHUNK cards per transaction through the bulk path) and once card
by card (`place_order`, what the route did first), each on its own cards. No HTTP: this measures the
service and the database only.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwe
from joserfc.jwk import ECKey

from issuance.api.routes.production import _problems
from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.contract.sensitive import luhn_ok
from issuance.db.batch_replies import SqlBatchReplies
from issuance.db.migrate import upgrade
from issuance.domain.audit import PLATFORM
from issuance.platform import Platform
from issuance.services.batch_ordering import BatchOrdering, Item
from issuance.services.intake import to_item
from issuance.services.ordering import place_order
from issuance.settings import Settings

ADDRESS = {"line1": "10 Rue de Rivoli", "zipCode": "75001", "city": "Paris", "countryCode": "FR"}


def _card(number: int, key: ECKey, run: str) -> dict[str, Any]:
    body = f"45399100{number:07d}"
    pan = next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))
    header = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key.kid}
    card = {"pan": pan, "exp": "2911", "name": "ADA LOVELACE", "cvv2": "123"}
    return {
        "cardId": f"bench-{run}-{number:05d}",
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


def _items(platform: Platform, cards: list[dict[str, Any]]) -> list[Item]:
    keys = platform.intake_keys
    return [
        to_item(card, issuer_id="DEMOBANK01", keys=keys, schema_problems=_problems)
        for card in cards
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cards", type=int, nargs="?", default=1000)
    parser.add_argument("--database-url")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        url = args.database_url or f"sqlite:///{work / 'issuance.db'}"
        if args.database_url is None:
            upgrade(url)
        platform = Platform.build(Settings(database_url=url, keys_dir=work / "keys", sandbox=True))
        _bench(platform, args)
        platform.close()
    finally:
        shutil.rmtree(work)


def _bench(platform: Platform, args: argparse.Namespace) -> None:
    from issuance.services.configuration import load_config

    load_config(read_config(SANDBOX_CONFIG), uow=platform.uow())
    key = ECKey.import_key(platform.keys.public_jwks()["keys"][0])
    batched = [_card(n, key, "b") for n in range(args.cards)]
    alone = [_card(n, key, "a") for n in range(args.cards)]

    started = time.monotonic()
    items = _items(platform, batched)
    intake = time.monotonic() - started

    ordering = BatchOrdering(
        uow=platform.uow,
        replies=SqlBatchReplies(platform.engine),
        clock=platform.clock,
        new_id=platform.new_id,
        actor=PLATFORM,
        digest_key=platform.intake_keys.fingerprint,
        bulk=platform.bulk,  # as the route places its chunks
    )
    profile = cProfile.Profile() if args.profile else None
    started = time.monotonic()
    if profile:
        profile.enable()
    answer = ordering.order("DEMOBANK01", items)
    if profile:
        profile.disable()
    chunked = time.monotonic() - started
    assert all("operationId" in line for line in answer.lines), answer.lines[:3]

    commands = [item.command for item in _items(platform, alone) if item.command is not None]
    started = time.monotonic()
    for command in commands:
        place_order(command, uow=platform.uow(), clock=platform.clock, new_id=platform.new_id)
    one_by_one = time.monotonic() - started

    print(
        json.dumps(
            {
                "cards": args.cards,
                "database": platform.settings.database_url.split(":", 1)[0],
                "intakeSeconds": round(intake, 2),
                "chunkedPlacingSeconds": round(chunked, 2),
                "cardByCardPlacingSeconds": round(one_by_one, 2),
                "ratio": round(one_by_one / chunked, 1),
            },
            indent=2,
        )
    )
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()

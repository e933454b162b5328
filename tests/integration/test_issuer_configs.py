"""Every issuer's configuration in one read: the delivery worker asks for them all at each claim.

A stamp read per issuer made that 1 + N statements a claim; now it is one, plus one for the
documents of versions this process has not validated yet.
"""

from __future__ import annotations

from issuance.cli.config_file import SANDBOX_CONFIG, read_config
from issuance.domain.programs import IssuerConfig
from issuance.platform import Platform
from issuance.services.configuration import load_config
from tests.factories import DEMO
from tests.outbox import Sent, statements

SANDBOX = read_config(SANDBOX_CONFIG)


def issuers(platform: Platform) -> tuple[list[IssuerConfig], list[Sent]]:
    """What `issuers()` answers, and the statements it sent that read the issuers table."""
    with statements(platform.engine) as sent, platform.reader() as uow:
        found = uow.config.issuers()
    return found, [s for s in sent if "FROM issuers" in s.sql]


def test_all_issuers_come_ordered_by_id_and_once_validated_in_one_statement(
    platform: Platform,
) -> None:
    first, _ = issuers(platform)
    again, sent = issuers(platform)

    assert [i.issuer_id for i in first] == sorted(i.issuer_id for i in SANDBOX.issuers)
    assert len(first) >= 2
    assert len(sent) == 1  # the stamps: every version is validated already
    assert all(a is b for a, b in zip(again, first, strict=True))  # not validated again


def test_a_reloaded_configuration_is_read_again(platform: Platform) -> None:
    before, _ = issuers(platform)
    demo = SANDBOX.issuers[0]
    assert demo.issuer_id == DEMO
    renamed = demo.model_copy(update={"name": "Demo Bank, renamed"})
    load_config(
        SANDBOX.model_copy(update={"issuers": (renamed, *SANDBOX.issuers[1:])}),
        uow=platform.uow(),
    )

    after, sent = issuers(platform)

    assert len(sent) == 2  # the stamps, then the documents of the new versions, in one read
    assert {i.issuer_id: i.name for i in after}[DEMO] == "Demo Bank, renamed"
    assert [i.issuer_id for i in after] == [i.issuer_id for i in before]


def test_an_issuer_looked_up_after_them_all_is_not_read_again(platform: Platform) -> None:
    with platform.reader() as uow:
        everyone = {i.issuer_id: i for i in uow.config.issuers()}
        with statements(platform.engine) as sent:
            demo = uow.config.issuer(DEMO)

    assert demo is everyone[DEMO]
    assert sent == []

"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright).

An operator signs in, finds an order by its card id, sees it released and moved along without
reloading the page, and replays a notification whose new attempt then appears by itself. The
server delivers notifications from its own thread, to a loopback receiver. Screenshots of the
main pages land in `test-output/console/`.

Playwright never downloads a browser here: it drives /usr/bin/chromium. Without it the tests
skip, unless ISSUANCE_REQUIRE_BROWSER is set (CI), which makes them fail instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from issuance.settings import Settings
from tests.conftest import Server
from tests.console.conftest import point_demobank_at
from tests.factories import (
    OPERATOR,
    ActingIssuerClient,
    OperatorClient,
    advance_clock,
    new_card_id,
    order_body,
    tick,
)
from tests.receiver import Receiver, Reply

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRED = bool(os.environ.get("ISSUANCE_REQUIRE_BROWSER"))

pytestmark = [
    pytest.mark.browser,
    # What the page does is the same on both databases; every query behind it runs on both in
    # test_console_http.py. One database keeps the browser set quick.
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.xdist_group("browser"),  # one Chromium per worker: keep them on one
    pytest.mark.skipif(
        not CHROMIUM.exists() and not REQUIRED,
        reason="no /usr/bin/chromium (apt-get install chromium); set ISSUANCE_REQUIRE_BROWSER=1 "
        "to fail instead",
    ),
]
expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("ISSUANCE_REQUIRE_BROWSER is set but /usr/bin/chromium is missing")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def settings(database_url: str, keys_dir: Path) -> Settings:
    """The sandbox, delivering from the server (as `make run`), with the simulator left to the
    test so that orders move only when it says."""
    return Settings(
        database_url=database_url,
        keys_dir=keys_dir,
        sandbox=True,
        simulator=False,
        deliver_in_server=True,
    )


@pytest.fixture
def receiver(server: Server) -> Iterator[Receiver]:
    with Receiver() as listening:
        point_demobank_at(server.platform, listening.url)
        yield listening


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    folder = request.config.rootpath / "test-output" / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    """A fresh browser profile (no cookies) signed in through the login form."""
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1366, "height": 900})
    opened = context.new_page()
    opened.goto("/console")
    expect(opened.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    opened.get_by_label("Operator id").fill(OPERATOR[0])
    opened.get_by_label("Secret").fill(OPERATOR[1])
    opened.get_by_role("button", name="Sign in").click()
    expect(opened.get_by_role("heading", name="Pipeline", exact=True)).to_be_visible()
    yield opened
    context.close()


def _held_order(http: httpx.Client) -> str:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    card_id = new_card_id()
    assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
    assert operator.act(card_id, "prepare").status_code == 200
    assert operator.act(card_id, "hold", reason="quality check").status_code == 200
    return card_id


def test_an_operator_finds_an_order_and_watches_it_released_and_moved_live(
    server: Server, http: httpx.Client, page: Page, receiver: Receiver, shots: Path
) -> None:
    card_id = _held_order(http)
    page.get_by_role("link", name="Orders", exact=True).click()
    page.get_by_label("Card id").fill(card_id)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results")).to_contain_text(card_id)
    page.screenshot(path=shots / "orders.png", full_page=True)

    page.get_by_role("link", name=card_id).click()
    expect(page.locator("#order-hold")).to_contain_text("On hold (bureau)")
    expect(page.locator("#order-status")).to_contain_text("DATA_PREPARED")
    page.evaluate("window.stayedOnPage = true")  # gone if the page reloads

    queue = page.context.new_page()  # a second tab: the on-hold queue
    queue.goto("/console/queues/on-hold")
    queue.screenshot(path=shots / "on-hold.png", full_page=True)
    queue.get_by_role("button", name=f"Release card {card_id}").click()
    expect(queue.get_by_role("status")).to_contain_text(f"card {card_id} is DATA_PREPARED")
    expect(queue.locator("#queue-empty")).to_be_visible()
    queue.close()

    expect(page.locator("#order-hold")).to_have_text("Not held")  # the first tab, by itself
    expect(page.locator("#live-announcer")).to_have_text(f"Card {card_id}: DATA_PREPARED.")
    page.get_by_text("End this order…").click()  # open: it stays open through live updates
    operator = OperatorClient(http)
    advance_clock(http, 10, headers=operator.headers)
    assert tick(http, headers=operator.headers) >= 1  # batched: CARD_PROD_READY
    expect(page.locator("#order-status")).to_contain_text("CARD_PROD_READY")
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    expect(page.locator("#timeline > li")).to_have_count(
        5
    )  # accepted, prepared, held, released, ready
    assert page.evaluate("window.stayedOnPage") is True
    page.screenshot(path=shots / "card.png", full_page=True)


def test_a_replayed_notification_shows_its_new_attempt_live(
    server: Server, http: httpx.Client, page: Page, receiver: Receiver, shots: Path
) -> None:
    issuer = ActingIssuerClient(http)
    card_id = new_card_id()
    receiver.answer(204, Reply(status=204, delay=2.0))  # the replay is answered slowly
    assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
    deadline = time.monotonic() + 10
    while not receiver.received and time.monotonic() < deadline:  # the server's worker sends it
        time.sleep(0.02)
    page.goto(f"/console/issuers/{issuer.issuer_id}/cards/{card_id}")
    attempts = page.locator("#timeline > li").first.locator(".attempt-list > li")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("HTTP 204")

    page.get_by_role("button", name="Replay event #1").click()
    expect(page.get_by_role("status")).to_contain_text("1 delivery is due again now")
    page.evaluate("window.stayedOnPage = true")
    expect(attempts).to_have_count(1)  # the receiver holds the second POST for 2 s
    expect(attempts).to_have_count(2)
    expect(attempts.nth(1)).to_contain_text("HTTP 204")
    assert page.evaluate("window.stayedOnPage") is True
    assert len(receiver.received) == 2


def test_screenshots_of_the_main_pages(
    server: Server, http: httpx.Client, page: Page, receiver: Receiver, shots: Path
) -> None:
    """A pipeline with orders in several states that follows them live, and every page
    reachable from the menu."""
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    shipped = ("prepare", "queue", "start", "complete", "ship")
    moves = [(), ("prepare",), ("prepare", "queue"), ("prepare", "queue", "start"), shipped]
    for steps in moves * 2 + [("prepare", "queue", "exception"), ("prepare", "hold")]:
        card_id = new_card_id()
        assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
        for step in steps:
            assert operator.act(card_id, step).status_code == 200, step
    page.reload()
    expect(page.locator("#count-exceptions")).to_have_text("1")
    expect(page.locator("#days-table")).to_contain_text("100%")  # both shipped by their due date
    page.screenshot(path=shots / "pipeline.png", full_page=True)
    held = new_card_id()
    assert issuer.order(held, order_body(issuer.encrypt())).status_code == 202
    assert operator.act(held, "hold").status_code == 200
    expect(page.locator("#count-held")).to_have_text("2")  # without a reload
    for name, label in (
        ("exceptions", "Exceptions"),
        ("endpoints", "Notifications"),
        ("sandbox", "Sandbox"),
    ):
        page.get_by_role("link", name=label, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.screenshot(path=shots / f"{name}.png", full_page=True)
    page.keyboard.press("Tab")  # the skip link is the first stop and shows itself
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

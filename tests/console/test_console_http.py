"""The console over real HTTP, without a browser: sign-in, CSRF, empty states, search paging,
actions, live fragments, and no card data on any page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from issuance.db.sandbox import SqlChaosStore, SqlScenarioStore
from tests.conftest import Server
from tests.console.conftest import csrf_of, insert_orders, sign_in
from tests.factories import (
    ADDRESS,
    DEMO,
    OPERATOR,
    OTHER,
    ActingIssuerClient,
    OperatorClient,
    card_data,
    encrypt,
    journal_of,
    new_card_id,
    order_body,
)

PAGES = [
    "/console",
    "/console/orders",
    "/console/queues/exceptions",
    "/console/queues/on-hold",
    "/console/queues/returned",
    "/console/containers",
    f"/console/issuers/{DEMO}/containers/box-1",
    "/console/endpoints",
    "/console/sandbox",
    f"/console/issuers/{DEMO}/cards/card-1",
]


def _held_card(http: httpx.Client) -> str:
    issuer, operator = ActingIssuerClient(http), OperatorClient(http)
    card_id = new_card_id()
    assert issuer.order(card_id, order_body(issuer.encrypt())).status_code == 202
    assert operator.act(card_id, "hold", reason="quality check").status_code == 200
    return card_id


def _rows(html: str) -> list[str]:
    """The card ids of a results table, in page order."""
    return re.findall(r'<td><a class="id" href="/console/issuers/[^/]+/cards/([^"]+)">', html)


def test_every_page_sends_a_stranger_to_the_login_form(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, follow_redirects=False) as stranger:
        for path in PAGES:
            answer = stranger.get(path, params={"x": "1"})
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/console/login?next=" + path), path
        assert stranger.get("/console/live/pipeline").status_code == 401  # a fragment, no page
        action = f"/console/issuers/{DEMO}/cards/card-1/actions/release"
        posted = stranger.post(action, data={"csrf": "x"})
        assert (posted.status_code, posted.headers["location"]) == (
            303,
            "/console/login?next=/console",
        )
        login = stranger.get("/console/login")
        assert login.status_code == 200
        assert 'autocomplete="current-password"' in login.text


def test_only_an_operator_secret_opens_a_session_and_its_cookie_is_hardened(
    server: Server,
) -> None:
    with httpx.Client(base_url=server.base_url, follow_redirects=False) as client:
        form = client.get("/console/login")
        cookie = form.headers["set-cookie"].lower()
        assert {"httponly", "samesite=strict", "path=/console"} <= {
            part.strip() for part in cookie.split(";")
        }
        for operator_id, secret in (
            ("operator", "wrong"),
            ("nobody", "sandbox-secret-operator"),
            ("demobank01", "sandbox-secret-demobank01"),  # an issuer client is no operator
        ):
            token = csrf_of(client.get("/console/login").text)
            refused = client.post(
                "/console/login", data={"operator_id": operator_id, "secret": secret, "csrf": token}
            )
            assert refused.status_code == 401
            assert "Unknown operator or wrong secret." in refused.text
        assert client.get("/console").status_code == 303
        token = csrf_of(client.get("/console/login").text)
        opened = client.post(
            "/console/login",
            data={
                "operator_id": "operator",
                "secret": "sandbox-secret-operator",
                "csrf": token,
                "next": "/console/orders",
            },
        )
        assert (opened.status_code, opened.headers["location"]) == (303, "/console/orders")
        page = client.get("/console/orders")
        assert page.status_code == 200
        assert csrf_of(page.text) != token  # a new token once signed in
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"

        assert client.post("/console/logout", data={"csrf": csrf_of(page.text)}).status_code == 303
        assert client.get("/console").status_code == 303


def test_a_login_without_the_forms_token_or_to_another_site_goes_nowhere(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, follow_redirects=False) as client:
        client.get("/console/login")
        forged = client.post(
            "/console/login", data={"operator_id": "operator", "secret": "sandbox-secret-operator"}
        )
        assert forged.status_code == 403
        assert client.get("/console").status_code == 303
        token = csrf_of(client.get("/console/login").text)
        away = client.post(
            "/console/login",
            data={
                "operator_id": "operator",
                "secret": "sandbox-secret-operator",
                "csrf": token,
                "next": "//evil.example/console",
            },
        )
        assert (away.status_code, away.headers["location"]) == (303, "/console")


def test_a_form_without_the_sessions_csrf_token_changes_nothing(
    server: Server, http: httpx.Client, console: httpx.Client
) -> None:
    card_id = _held_card(http)
    action = f"/console/issuers/{DEMO}/cards/{card_id}/actions/release"
    for data in ({}, {"csrf": "not-the-token"}):
        refused = console.post(action, data=data)
        assert refused.status_code == 403
        assert "This form was refused" in refused.text
    assert OperatorClient(http).orders(issuer_id=DEMO).json()["orders"][0]["details"]["onHold"]
    with httpx.Client(base_url=server.base_url, follow_redirects=False) as other:
        other_token = sign_in(other)  # another operator session's token is not this one's
    assert console.post(action, data={"csrf": other_token}).status_code == 403


def test_a_fresh_platform_shows_empty_states(console: httpx.Client) -> None:
    expected = {
        "/console": "No orders yet.",
        "/console/orders": "No orders yet.",
        "/console/queues/exceptions": "No order is stopped in production.",
        "/console/queues/on-hold": "No order is on hold.",
        "/console/queues/returned": "No returned card is waiting.",
        "/console/containers": "No containers yet.",
        f"/console/issuers/{DEMO}/containers/box-1": "There is no such container.",
        "/console/endpoints": "No delivery yet",
        f"/console/issuers/{DEMO}/cards/card-1": "No production order for card",
    }
    for path, text in expected.items():
        page = console.get(path)
        assert page.status_code == (404 if "/cards/" in path or "/containers/" in path else 200), (
            path
        )
        assert text in page.text, path
    assert "No order matches these filters" in console.get("/console/orders?cardId=nope").text


def test_containers_list_each_box_and_its_cards(http: httpx.Client, console: httpx.Client) -> None:
    issuer = ActingIssuerClient(http)
    box = f"box-{new_card_id()}"
    shipment = {"type": "BULK", "groupId": box, "orderId": "pallet-7", "deliveryAddress": ADDRESS}
    cards = sorted(new_card_id() for _ in range(2))
    for card_id in cards:
        body = order_body(
            issuer.encrypt(), services={"issuance": "CREATION", "delivery": "dhl-branch"}
        )
        answer = issuer.order(card_id, {**body, "shipment": shipment})
        assert answer.status_code == 202, answer.text

    listed = console.get("/console/containers")
    page = console.get(f"/console/issuers/{DEMO}/containers/{box}")

    assert listed.status_code == 200
    row = re.search(
        rf'href="/console/issuers/{DEMO}/containers/{box}">{box}</a>.*?</tr>', listed.text, re.S
    )
    assert row is not None
    assert ">OPEN<" in row.group(0)
    assert "<td>2</td>" in row.group(0)
    assert "pallet-7" in row.group(0)
    assert page.status_code == 200
    assert _rows(page.text) == cards  # each card links to its own page
    card_page = console.get(f"/console/issuers/{DEMO}/cards/{cards[0]}").text
    assert f'href="/console/issuers/{DEMO}/containers/{box}">{box}</a>' in card_page  # and back
    filtered = console.get("/console/containers", params={"status": "IN_TRANSIT"})
    assert box not in filtered.text
    assert "No container matches these filters." in filtered.text
    other = console.get("/console/containers", params={"issuerId": OTHER})
    assert box not in other.text
    own = console.get("/console/containers", params={"issuerId": DEMO, "status": "OPEN"})
    assert f">{box}</a>" in own.text


def test_search_pages_through_every_match_once_newest_first(
    server: Server, console: httpx.Client
) -> None:
    engine = server.platform.engine
    ready = insert_orders(engine, 23, status="CARD_PROD_READY")
    insert_orders(engine, 4, status="DATA_PREPARED")
    seen: list[str] = []
    url: str | None = "/console/orders?status=CARD_PROD_READY&size=10"
    pages = 0
    while url is not None:
        page = console.get(url)
        assert page.status_code == 200
        seen += _rows(page.text)
        pages += 1
        found = re.search(r'<a rel="next" href="([^"]+)"', page.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert pages == 3
    with engine.connect() as connection:
        cards: dict[str, str] = dict(
            connection.exec_driver_sql("SELECT operation_id, card_id FROM orders").fetchall()
        )
    assert seen == [cards[operation_id] for operation_id in reversed(ready)]


def test_search_finds_by_each_id_and_orders_a_due_range_soonest_first(
    server: Server, console: httpx.Client
) -> None:
    engine = server.platform.engine
    insert_orders(engine, 6, start=datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT card_id, issuer_request_id, consumer_id, due_date FROM orders ORDER BY due_date"
        ).fetchall()
    card_id, request_id, consumer_id, _ = rows[2]
    for name, value in (
        ("cardId", card_id),
        ("issuerRequestId", request_id),
        ("consumerId", consumer_id),
    ):
        assert _rows(console.get("/console/orders", params={name: value}).text) == [card_id]
    due = console.get("/console/orders", params={"dueFrom": "2026-11-03", "dueTo": "2026-11-03"})
    assert _rows(due.text) == [row[0] for row in rows]  # all due on the 3rd, soonest first
    paged = console.get("/console/orders", params={"dueFrom": "2026-11-03", "size": 4})
    follow = re.search(r'<a rel="next" href="([^"]+)"', paged.text)
    assert follow is not None
    rest = console.get(follow.group(1).replace("&amp;", "&"))
    assert _rows(paged.text) + _rows(rest.text) == [row[0] for row in rows]
    assert _rows(console.get("/console/orders?dueFrom=2026-11-04").text) == []
    refused = console.get("/console/orders?dueFrom=yesterday")
    assert refused.status_code == 400
    assert "dueFrom: must be a date" in refused.text


def test_queue_actions_call_the_workflow_and_report_back(
    server: Server, http: httpx.Client, console: httpx.Client
) -> None:
    card_id = _held_card(http)
    queue = console.get("/console/queues/on-hold")
    assert card_id in queue.text
    assert f'aria-label="Release card {card_id}"' in queue.text
    done = console.post(
        f"/console/issuers/{DEMO}/cards/{card_id}/actions/release",
        data={"csrf": csrf_of(queue.text), "next": "/console/queues/on-hold"},
    )
    assert (done.status_code, done.headers["location"]) == (303, "/console/queues/on-hold")
    after = console.get("/console/queues/on-hold")
    assert f"Release: card {card_id} is CARD_PROD_REQUESTED." in after.text
    assert "No order is on hold." in after.text
    assert "Release: card" not in console.get("/console/queues/on-hold").text  # shown once
    assert [step[1] for step in journal_of(server.platform.engine, card_id)][-1] == "order.released"
    trail = OperatorClient(http)
    entries = trail.http.get(
        "/operator/v1/audit", params={"cardId": card_id}, headers=trail.headers
    ).json()["entries"]
    latest = entries[0]
    assert (latest["actorKind"], latest["actor"], latest["action"]) == (
        "OPERATOR",
        OPERATOR[0],
        "order.release",
    )

    again = console.post(
        f"/console/issuers/{DEMO}/cards/{card_id}/actions/release",
        data={"csrf": csrf_of(after.text)},
    )
    notice = console.get(again.headers["location"])
    assert "Release refused: card" in notice.text
    assert 'role="alert"' in notice.text


def test_the_card_page_shows_the_journal_deliveries_and_replays_one(
    server: Server, http: httpx.Client, console: httpx.Client
) -> None:
    card_id = _held_card(http)
    path = f"/console/issuers/{DEMO}/cards/{card_id}"
    page = console.get(path)
    assert 'id="order-hold"><span class="badge tone-warn">On hold (bureau)' in page.text
    assert page.text.count('class="seq"') == 2  # accepted, held
    assert "not attempted yet" in page.text  # the sandbox endpoint, never reached in this test
    event_id = re.search(r'action="/console/events/(\d+)/replay"', page.text)
    assert event_id is not None
    replayed = console.post(
        f"/console/events/{event_id.group(1)}/replay",
        data={"csrf": csrf_of(page.text), "next": path},
    )
    assert replayed.headers["location"] == path
    assert "1 delivery is due again now." in console.get(path).text
    missing = console.post("/console/events/999999/replay", data={"csrf": csrf_of(page.text)})
    assert "Event 999999 has no delivery." in console.get(missing.headers["location"]).text


def test_a_live_fragment_is_not_sent_again_until_the_order_moves(
    http: httpx.Client, console: httpx.Client
) -> None:
    card_id = _held_card(http)
    live = f"/console/live/issuers/{DEMO}/cards/{card_id}"
    first = console.get(live)
    assert first.status_code == 200
    assert "<html" not in first.text  # a fragment, for the page's script to swap in
    tag = first.headers["etag"]
    page = console.get(f"/console/issuers/{DEMO}/cards/{card_id}")
    assert 'data-live-etag="{}"'.format(tag.replace('"', "&#34;")) in page.text  # first poll: 304
    assert console.get(live, headers={"If-None-Match": tag}).status_code == 304
    assert OperatorClient(http).act(card_id, "release").status_code == 200
    moved = console.get(live, headers={"If-None-Match": tag})
    assert moved.status_code == 200
    assert "Not held" in moved.text
    pipeline = console.get("/console/live/pipeline").headers["etag"]
    assert (
        console.get("/console/live/pipeline", headers={"If-None-Match": pipeline}).status_code
        == 304
    )


def test_sandbox_controls_move_the_clock_set_scenarios_and_chaos(
    server: Server, console: httpx.Client
) -> None:
    platform = server.platform
    token = csrf_of(console.get("/console/sandbox").text)
    before = platform.clock()
    console.post("/console/sandbox/clock", data={"csrf": token, "seconds": "86400"})
    assert platform.clock() - before >= timedelta(days=1)
    console.post(
        "/console/sandbox/scenario",
        data={"csrf": token, "issuer_id": DEMO, "card_id": "card-7", "scenario": "ON_HOLD"},
    )
    assert SqlScenarioStore(platform.engine).get(DEMO, "card-7") == ("ON_HOLD", 0)
    console.post(
        f"/console/sandbox/chaos/{DEMO}/main",
        data={"csrf": token, "duplicate": "0.5", "delay_seconds": "1", "reorder": "on"},
    )
    chaos = SqlChaosStore(platform.engine).all()[(DEMO, "main")]
    assert (chaos.duplicate, chaos.delay_seconds, chaos.reorder) == (0.5, 1.0, True)
    wrong = console.post(
        f"/console/sandbox/chaos/{DEMO}/main", data={"csrf": token, "duplicate": "2"}
    )
    assert "Chaos not changed" in console.get(wrong.headers["location"]).text
    ticked = console.post("/console/sandbox/tick", data={"csrf": token})
    assert "Simulator round:" in console.get(ticked.headers["location"]).text


def test_no_page_shows_card_data(http: httpx.Client, console: httpx.Client) -> None:
    issuer = ActingIssuerClient(http)
    card_id = new_card_id()
    data = card_data(name="ZELDA QUARTERMAINE")
    assert issuer.order(card_id, order_body(encrypt(data, issuer.jwks))).status_code == 202
    OperatorClient(http).act(card_id, "hold", reason="quality check")
    seen = [
        *PAGES,
        f"/console/issuers/{DEMO}/cards/{card_id}",
        f"/console/live/issuers/{DEMO}/cards/{card_id}",
        "/console/live/pipeline",
        f"/console/orders?cardId={card_id}",
    ]
    for path in seen:
        text = console.get(path).text
        assert data["pan"] not in text, path
        assert "ZELDA" not in text, path


def test_every_field_on_every_page_has_a_label(http: httpx.Client, console: httpx.Client) -> None:
    card_id = _held_card(http)
    pages = [*PAGES, f"/console/issuers/{DEMO}/cards/{card_id}", "/console/login"]
    with httpx.Client(base_url=str(console.base_url)) as stranger:
        login = stranger.get("/console/login").text
    checked = 0
    for path in pages:
        html = login if path == "/console/login" else console.get(path).text
        fields = [
            tag
            for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html)
            if 'type="hidden"' not in tag
        ]
        for tag in fields:
            found = re.search(r'\bid="([^"]+)"', tag)
            assert found is not None, (path, tag)
            assert f'<label for="{found.group(1)}"' in html, (path, tag)
            checked += 1
    assert checked >= 15  # search, card actions, sandbox controls, chaos, login…

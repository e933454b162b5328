"""Extension: uploading an order file over HTTP, following its import, reading its report."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from issuance.settings import Settings
from tests.conftest import Server
from tests.factories import OTHER, IssuerClient, luhn_pan, new_card_id, order_body

UPLOAD_LIMIT = 64 * 1024  # bytes
API_BODY_LIMIT = 2048  # bytes: far below the upload limit, as a batch order's 4 MiB is in use


@pytest.fixture(name="settings")
def upload_settings(database_url: str, keys_dir: Path, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        keys_dir=keys_dir,
        sandbox=True,
        simulator=False,
        deliver_in_server=False,
        order_files_dir=tmp_path / "order-files",
        max_upload_bytes=UPLOAD_LIMIT,
        max_body_bytes=API_BODY_LIMIT,
    )


@pytest.fixture
def issuer(http: httpx.Client) -> IssuerClient:
    return IssuerClient(http)


def _path(issuer: IssuerClient, *rest: str) -> str:
    return "/".join((f"/banking/v1/issuers/{issuer.issuer_id}/orderFiles", *rest))


def upload(
    issuer: IssuerClient, content: bytes | Iterator[bytes], content_type: str, name: str
) -> httpx.Response:
    headers = {**issuer.headers, "Content-Type": content_type}
    return issuer.http.post(
        _path(issuer), content=content, headers=headers, params={"fileName": name}
    )


def finished(issuer: IssuerClient, import_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = issuer.http.get(_path(issuer, import_id), headers=issuer.headers)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] in {"DONE", "FAILED"}:
            return dict(answer.json())
        time.sleep(0.1)
    raise AssertionError("the import did not finish within 60 s")


def report(issuer: IssuerClient, import_id: str) -> list[dict[str, Any]]:
    answer = issuer.http.get(_path(issuer, import_id, "report"), headers=issuer.headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in answer.text.splitlines()]


def _item(issuer: IssuerClient, **overrides: Any) -> dict[str, Any]:
    return {"cardId": new_card_id(), **order_body(issuer.encrypt()), **overrides}


def _jsonl(items: list[Any]) -> bytes:
    return b"".join(
        (item if isinstance(item, bytes) else json.dumps(item).encode()) + b"\n" for item in items
    )


def _flat(node: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        return {
            k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()
        }
    if isinstance(node, list):
        return {
            k: v for n, value in enumerate(node) for k, v in _flat(value, f"{prefix}{n}.").items()
        }
    return {prefix.rstrip("."): str(node)}


def _csv(items: list[dict[str, Any]]) -> bytes:
    rows = [_flat(item) for item in items]
    columns = sorted({column for row in rows for column in row})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def test_a_json_lines_file_is_imported_and_reported_line_by_line(issuer: IssuerClient) -> None:
    good = [_item(issuer) for _ in range(3)]
    bad_schema = _item(issuer, services={"issuance": "LATER"})
    no_key = _item(issuer, issuerRequestId=None)
    lines = [good[0], bad_schema, good[1], b"{not json", no_key, good[2]]
    answer = upload(issuer, _jsonl(lines), "application/x-ndjson", "portfolio-2026-12.jsonl")

    assert answer.status_code == 202, answer.text
    import_id = answer.json()["importId"]
    assert answer.json()["status"] == "QUEUED"
    assert answer.headers["Location"].endswith(f"/orderFiles/{import_id}")
    status = finished(issuer, import_id)
    assert status["status"] == "DONE"
    assert (status["lines"], status["accepted"], status["replayed"], status["refused"]) == (
        6,
        3,
        0,
        3,
    )
    assert status["progress"] == 1.0
    assert status["fileName"] == "portfolio-2026-12.jsonl"
    rows = report(issuer, import_id)
    assert [(r["line"], r["result"]) for r in rows] == [
        (1, "ACCEPTED"),
        (2, "REFUSED"),
        (3, "ACCEPTED"),
        (4, "REFUSED"),
        (5, "REFUSED"),
        (6, "ACCEPTED"),
    ]
    assert (rows[1]["errorCode"], rows[1]["field"]) == ("FIELD_INVALID_VALUE", "services.issuance")
    assert rows[3]["errorCode"] == "INVALID_JSON"
    assert (rows[4]["errorCode"], rows[4]["field"]) == ("FIELD_MISSING", "issuerRequestId")
    assert rows[0]["cardId"] == good[0]["cardId"]
    operation = issuer.status(good[0]["cardId"]).json()["operations"][0]
    assert operation["operationId"] == rows[0]["operationId"]
    assert operation["inputFileName"] == "portfolio-2026-12.jsonl"


def test_re_uploading_a_file_orders_nothing_twice(issuer: IssuerClient) -> None:
    items = [_item(issuer) for _ in range(3)] + [_item(issuer, cardProductId="NOPE")]
    content = _jsonl(items)
    first = finished(
        issuer, upload(issuer, content, "application/jsonl", "a.jsonl").json()["importId"]
    )
    again_id = upload(issuer, content, "application/jsonl", "a.jsonl").json()["importId"]
    again = finished(issuer, again_id)

    assert (first["accepted"], first["refused"]) == (3, 1)
    assert (again["accepted"], again["replayed"], again["refused"]) == (0, 3, 1)
    before = report(issuer, first["importId"])
    after = report(issuer, again_id)
    assert [r["result"] for r in after] == ["REPLAYED"] * 3 + ["REFUSED"]
    assert [r.get("operationId") for r in after] == [r.get("operationId") for r in before]
    for item in items[:3]:
        assert len(issuer.status(item["cardId"]).json()["operations"]) == 1


def test_a_report_past_its_days_is_gone_with_its_own_code(
    issuer: IssuerClient, server: Server, settings: Settings
) -> None:
    content = _jsonl([_item(issuer)])
    import_id = finished(
        issuer, upload(issuer, content, "application/jsonl", "old.jsonl").json()["importId"]
    )["importId"]
    assert len(report(issuer, import_id)) == 1
    assert server.platform.sandbox_clock is not None
    server.platform.sandbox_clock.advance(settings.import_report_days * 86_400 + 60)

    answer = issuer.http.get(_path(issuer, import_id, "report"), headers=issuer.headers)
    status = issuer.http.get(_path(issuer, import_id), headers=issuer.headers)

    assert answer.status_code == 410
    body = answer.json()
    assert (body["errorCode"], body["field"]) == ("IMPORT_REPORT_EXPIRED", "importId")
    assert "30 days" in body["error"]
    assert (status.status_code, status.json()["accepted"]) == (200, 1)  # the import stays


def test_a_csv_file_and_its_csv_report(issuer: IssuerClient) -> None:
    good = _item(issuer)
    bad = _item(issuer, cardProductId="NOPE")
    answer = upload(issuer, _csv([good, bad]), "text/csv; charset=utf-8", "cards.csv")
    assert answer.status_code == 202, answer.text
    import_id = answer.json()["importId"]
    assert finished(issuer, import_id)["accepted"] == 1

    csv_report = issuer.http.get(
        _path(issuer, import_id, "report"), headers={**issuer.headers, "Accept": "text/csv"}
    )
    assert csv_report.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_report.text)))
    assert [(r["line"], r["cardId"], r["result"]) for r in rows] == [
        ("2", good["cardId"], "ACCEPTED"),
        ("3", bad["cardId"], "REFUSED"),
    ]
    assert (rows[1]["errorCode"], rows[1]["field"]) == ("CARD_PRODUCT_UNKNOWN", "cardProductId")
    assert rows[1]["operationId"] == ""


@pytest.mark.parametrize(
    ("content", "content_type", "name", "code", "field"),
    [
        (
            b"cardId,shipment,shipment.type\nx,y,z\n",
            "text/csv",
            "f.csv",
            "FILE_INVALID_HEADER",
            "header",
        ),
        (b"{}\n", "application/json", "f.json", "UNSUPPORTED_CONTENT_TYPE", "Content-Type"),
        (b"{}\n", "application/x-ndjson", "../etc/passwd", "FIELD_INVALID_FORMAT", "fileName"),
        (b"", "application/x-ndjson", "empty.jsonl", "FILE_EMPTY", "body"),
    ],
)
def test_an_unreadable_upload_is_refused(
    issuer: IssuerClient, content: bytes, content_type: str, name: str, code: str, field: str
) -> None:
    answer = upload(issuer, content, content_type, name)
    assert answer.status_code == 400, answer.text
    assert (answer.json()["errorCode"], answer.json()["field"]) == (code, field)


def test_another_issuer_cannot_read_an_import(http: httpx.Client, issuer: IssuerClient) -> None:
    import_id = upload(issuer, _jsonl([_item(issuer)]), "application/x-ndjson", "x.jsonl").json()[
        "importId"
    ]
    other = IssuerClient(http, OTHER)
    on_our_path = http.get(_path(issuer, import_id), headers=other.headers)
    assert on_our_path.status_code == 403
    assert on_our_path.json()["errorCode"] == "ISSUER_MISMATCH"
    for path in (_path(other, import_id), _path(other, import_id, "report")):
        answer = http.get(path, headers=other.headers)
        assert answer.status_code == 404
        assert answer.json()["errorCode"] == "IMPORT_NOT_FOUND"
    upload_there = http.post(
        _path(issuer),
        content=b"{}\n",
        headers={**other.headers, "Content-Type": "text/csv"},
        params={"fileName": "x.csv"},
    )
    assert upload_there.status_code == 403
    assert http.get(_path(issuer, import_id)).status_code == 401


def test_an_upload_over_the_limit_is_refused(issuer: IssuerClient, settings: Settings) -> None:
    big = b"x" * (UPLOAD_LIMIT + 1)
    declared = upload(issuer, big, "application/x-ndjson", "big.jsonl")
    assert declared.status_code == 413
    assert declared.json()["errorCode"] == "PAYLOAD_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(UPLOAD_LIMIT // 4096 + 2):
            yield b"y" * 4096

    streamed = upload(issuer, chunks(), "application/x-ndjson", "big.jsonl")
    assert streamed.status_code == 413
    assert list(settings.order_files_directory.glob("*")) == []  # nothing kept


def test_an_upload_may_be_larger_than_the_api_body_limit(issuer: IssuerClient) -> None:
    """The API's body limit does not apply: the upload has its own."""
    padding = b"\n" * (UPLOAD_LIMIT - 10_000)  # blank lines are skipped
    content = _jsonl([_item(issuer)]) + padding
    assert len(content) > API_BODY_LIMIT
    batch = issuer.order_batch([_item(issuer) for _ in range(2)])
    assert batch.status_code == 413  # the limit is in force elsewhere
    answer = upload(issuer, content, "application/x-ndjson", "padded.jsonl")
    assert answer.status_code == 202, answer.text
    assert finished(issuer, answer.json()["importId"])["accepted"] == 1


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.binary(min_size=1, max_size=300)
    | st.text(alphabet=st.sampled_from('ab,."\n\r\x00{}[]:é'), min_size=1, max_size=200).map(
        str.encode
    ),
    content_type=st.sampled_from(["text/csv", "application/x-ndjson"]),
)
def test_no_upload_yields_a_server_error_or_a_failed_import(
    issuer: IssuerClient, content: bytes, content_type: str
) -> None:
    answer = upload(issuer, content, content_type, "fuzz.txt")
    assert answer.status_code in {202, 400}, answer.text
    if answer.status_code == 202:
        assert finished(issuer, answer.json()["importId"])["status"] == "DONE"


def test_card_data_in_clear_is_refused_and_kept_nowhere(
    issuer: IssuerClient, settings: Settings
) -> None:
    pan = luhn_pan("45399100")
    item = {**_item(issuer), "pan": pan}
    import_id = upload(issuer, _csv([item]), "text/csv", "clear.csv").json()["importId"]
    assert finished(issuer, import_id)["refused"] == 1

    rows = report(issuer, import_id)
    assert (rows[0]["errorCode"], rows[0]["field"]) == ("SENSITIVE_DATA_NOT_ENCRYPTED", "pan")
    kept = [path.read_bytes() for path in settings.order_files_directory.iterdir()]
    assert kept  # the report
    assert all(pan.encode() not in content for content in kept)

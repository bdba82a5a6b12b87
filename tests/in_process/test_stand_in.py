"""Self-check of the Oktopost stand-in: the tap's tests are only as good as it is."""

from __future__ import annotations

import base64
import csv
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.stand_ins.oktopost_stand_in import (
    MISSING,
    OktopostStandIn,
    StandInExport,
    demo_exports,
    make_zip,
)

ARCHIVE = make_zip({"a.csv": "x,y\r\n1,2\r\n", "b.csv": "z\n" + "9\n" * 5000})


def _export(number: int, **overrides: Any) -> StandInExport:
    return StandInExport(id=f"032{number:012d}", **overrides)


def _request(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """Plain http.client: no proxy settings can route this off the loopback."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _api(
    stand_in: OktopostStandIn, path: str, password: str | None = None
) -> tuple[int, dict[str, Any]]:
    user_password = f"{stand_in.account_id}:{password or stand_in.api_key}"
    token = base64.b64encode(user_password.encode()).decode()
    status, _, body = _request(
        stand_in.base_url + path, {"Authorization": f"Basic {token}"}
    )
    return status, json.loads(body)


def _link(stand_in: OktopostStandIn, export_id: str) -> str:
    status, payload = _api(stand_in, f"/bi-export/{export_id}")
    assert status == 200
    link = payload["Export"]["LastRunFile"]
    assert isinstance(link, str)
    return link


@pytest.fixture
def stand_in() -> Iterator[OktopostStandIn]:
    with OktopostStandIn() as server:
        yield server


def test_credentials_are_checked(stand_in: OktopostStandIn) -> None:
    status, payload = _api(stand_in, "/me", password="wrong")
    assert status == 401
    assert payload == {
        "Result": False,
        "Errors": {"API": {"Error": "Invalid credentials"}},
    }
    status, _, _ = _request(stand_in.base_url + "/me")
    assert status == 401
    status, payload = _api(stand_in, "/me")
    assert (status, payload["Result"], payload["User"]["Id"]) == (
        200,
        True,
        "00A000000000001",
    )


def test_listing_pages_until_total(stand_in: OktopostStandIn) -> None:
    stand_in.page_size = 2
    for number in range(5):
        stand_in.add_export(
            _export(number, status="inactive" if number == 4 else "active")
        )
    pages = [
        _api(stand_in, f"/bi-export?_page={page}&_order=Id,1") for page in range(4)
    ]
    assert all(status == 200 and p["Total"] == 5 for status, p in pages)
    assert [len(p["Exports"]) for _, p in pages] == [2, 2, 1, 0]
    assert pages[0][1]["Exports"][0] == {
        "Id": "032000000000000",
        "DestinationType": "email",
        "Destination": {
            "Email": "john.doe@acme.com",
            "FirstName": "John",
            "LastName": "Doe",
        },
        "Type": "Posts",
        "Frequency": "Every day at 10:00 AM",
        "TimeRange": "Last 30 Days",
        "Status": "active",
    }
    assert _api(stand_in, "/bi-export")[1]["Exports"] == pages[0][1]["Exports"]
    _, active = _api(stand_in, "/bi-export?status=active&_page=1")
    assert active["Total"] == 4
    assert [e["Id"][-1] for e in active["Exports"]] == ["2", "3"]
    status, payload = _api(stand_in, "/bi-export?_page=two")
    assert status == 400
    assert payload["Errors"] == {"Param": {"_page": "Invalid value"}}


def test_detail_fields_and_never_run_styles(stand_in: OktopostStandIn) -> None:
    stand_in.add_export(_export(1, archive=ARCHIVE, last_run_date=1764237600))
    for number, style in [(2, "absent"), (3, "null"), (4, "empty")]:
        stand_in.add_export(_export(number, last_run_file_style=style))
    detail = _api(stand_in, "/bi-export/032000000000001")[1]["Export"]
    assert detail["LastRunDate"] == 1764237600
    assert urlsplit(detail["LastRunFile"]).port != urlsplit(stand_in.base_url).port
    assert "X-Amz-Signature=" in detail["LastRunFile"]
    assert (
        "LastRunDate" not in _api(stand_in, "/bi-export/032000000000002")[1]["Export"]
    )
    files = [
        _api(stand_in, f"/bi-export/03200000000000{n}")[1]["Export"].get(
            "LastRunFile", MISSING
        )
        for n in (2, 3, 4)
    ]
    assert files == [MISSING, None, ""]
    status, payload = _api(stand_in, "/bi-export/032999999999999")
    assert (status, payload["Errors"]["API"]["Error"]) == (404, "Export not found")
    assert _api(stand_in, "/nowhere")[0] == 404


def test_signed_link_downloads_without_auth(stand_in: OktopostStandIn) -> None:
    stand_in.add_export(_export(1, archive=ARCHIVE, last_run_date="2026-11-27"))
    link = _link(stand_in, "032000000000001")
    stand_in.reset_log()
    status, headers, body = _request(link)
    assert (status, body) == (200, ARCHIVE)
    assert headers["Content-Type"] == "application/zip"
    assert headers["Accept-Ranges"] == "bytes"
    assert stand_in.bytes_served == len(ARCHIVE)
    assert [d.status for d in stand_in.downloads()] == [200]
    status, headers, body = _request(link, method="HEAD")
    assert (status, headers["Content-Length"], body) == (200, str(len(ARCHIVE)), b"")
    assert stand_in.bytes_served == len(ARCHIVE)


def test_storage_refuses_auth_header_and_bad_links(stand_in: OktopostStandIn) -> None:
    stand_in.add_export(_export(1, archive=ARCHIVE))
    link = _link(stand_in, "032000000000001")
    status, _, body = _request(link, {"Authorization": "Basic eDp5"})
    assert status == 400
    assert b"<Code>InvalidArgument</Code>" in body
    assert b"Only one auth mechanism allowed" in body
    assert _request(link.replace("032000000000001", "032000000000002"))[0] == 403
    assert _request(link.split("?")[0])[0] == 403
    stand_in.link_lifetime_seconds = 0.0
    expired = _link(stand_in, "032000000000001")
    time.sleep(0.01)
    status, _, body = _request(expired)
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body
    assert stand_in.bytes_served == 0


def test_range_requests(stand_in: OktopostStandIn) -> None:
    stand_in.add_export(_export(1, archive=ARCHIVE))
    link = _link(stand_in, "032000000000001")
    total = len(ARCHIVE)
    status, headers, body = _request(link, {"Range": "bytes=10-19"})
    assert (status, body) == (206, ARCHIVE[10:20])
    assert headers["Content-Range"] == f"bytes 10-19/{total}"
    assert _request(link, {"Range": "bytes=100-"})[2] == ARCHIVE[100:]
    assert _request(link, {"Range": "bytes=-7"})[2] == ARCHIVE[-7:]
    assert _request(link, {"Range": "bytes=5-3"})[0] == 200  # malformed: ignored
    status, headers, _ = _request(link, {"Range": f"bytes={total}-"})
    assert (status, headers["Content-Range"]) == (416, f"bytes */{total}")
    stand_in.honour_range = False
    status, headers, body = _request(link, {"Range": "bytes=10-19"})
    assert (status, body) == (200, ARCHIVE)
    assert "Content-Range" not in headers


def test_range_styles_etags_and_replacement_in_place(
    stand_in: OktopostStandIn,
) -> None:
    stand_in.add_export(_export(1, archive=ARCHIVE))
    link = _link(stand_in, "032000000000001")
    total = len(ARCHIVE)
    past_end = {"Range": f"bytes=0-{total + 100}"}
    assert _request(link, past_end)[0] == 206  # S3 serves what there is
    stand_in.range_style = "strict"
    status, headers, _ = _request(link, past_end)
    assert (status, headers["Content-Range"]) == (416, f"bytes */{total}")
    stand_in.range_style = "strict-bare"
    status, headers, _ = _request(link, past_end)
    assert (status, "Content-Range" in headers) == (416, False)
    stand_in.range_style = "refuse"
    assert _request(link, {"Range": "bytes=0-9"})[0] == 416
    stand_in.range_style = "first-only"
    assert _request(link, {"Range": "bytes=0-9"})[2] == ARCHIVE[:10]
    assert _request(link, {"Range": "bytes=10-19"})[:3:2] == (200, ARCHIVE)

    stand_in.range_style = "s3"
    _, headers, _ = _request(link)
    etag = headers["ETag"]
    assert etag.startswith('"')
    same = {"Range": "bytes=10-19", "If-Range": etag}
    assert _request(link, same)[:3:2] == (206, ARCHIVE[10:20])
    replaced = make_zip({"c.csv": "q\n1\n"})
    stand_in.replace_after("032000000000001", 1, replaced)
    assert _request(link, same)[:3:2] == (206, ARCHIVE[10:20])  # still the old one
    status, headers, body = _request(link, same)
    assert (status, body) == (200, replaced)  # If-Range: the whole new file
    assert headers["ETag"] != etag
    stand_in.etag_style = "weak"
    assert _request(link)[1]["ETag"] == f"W/{headers['ETag']}"
    stand_in.etag_style = "none"
    assert "ETag" not in _request(link)[1]


def test_fail_next_and_truncation(stand_in: OktopostStandIn) -> None:
    stand_in.add_export(_export(1, archive=ARCHIVE))
    stand_in.fail_next("/v2/bi-export", 503, times=2, headers={"Retry-After": "1"})
    for _ in range(2):
        status, payload = _api(stand_in, "/bi-export")
        assert (status, payload["Result"]) == (503, False)
    assert _api(stand_in, "/me")[0] == 200
    assert _api(stand_in, "/bi-export")[0] == 200
    link = _link(stand_in, "032000000000001")
    stand_in.fail_next("/storage/", 500)
    status, headers, body = _request(link)
    assert (status, headers["Content-Type"]) == (500, "application/xml")
    assert body.startswith(b"<Error><Code>InternalError</Code>")
    stand_in.truncate_next_download()
    parts = urlsplit(link)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        response = connection.getresponse()
        assert response.getheader("Content-Length") == str(len(ARCHIVE))
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        connection.close()
    assert stand_in.bytes_served == len(ARCHIVE) // 2
    assert _request(link)[2] == ARCHIVE
    assert [d.status for d in stand_in.downloads()] == [500, 200, 200]


def test_set_run_replaces_file_and_stop_closes_connections() -> None:
    stand_in = OktopostStandIn().start()
    stand_in.add_export(_export(1, archive=ARCHIVE))
    new = make_zip({"new.csv": "n\n1\n"})
    stand_in.set_run("032000000000001", new, "2026-11-28 10:00:00", "new.zip")
    link = _link(stand_in, "032000000000001")
    assert "/new.zip?" in link
    parts = urlsplit(link)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        assert connection.getresponse().read() == new
        stand_in.stop()
        connection.request("GET", f"{parts.path}?{parts.query}")
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            connection.getresponse()
    finally:
        connection.close()


def test_demo_data() -> None:
    exports = {e.type: e for e in demo_exports()}
    assert all(len(e.id) == 15 and e.id.startswith("032") for e in exports.values())
    assert exports == {e.type: e for e in demo_exports()}  # deterministic
    with zipfile.ZipFile(io.BytesIO(exports["Posts"].archive or b"")) as archive:
        raw = archive.read("2026-11-27-Posts.csv")
        assert raw.startswith(b"\xef\xbb\xbf")
        assert b"\r\n" in raw
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        stats = archive.read("reports/Post Stats.csv").decode().splitlines()
    assert len(rows) == 40
    assert len(stats) == 21
    assert any("\n" in row["Message"] for row in rows)
    assert any(row["Campaign"] == "" for row in rows)
    assert all(len(row["Post ID"]) == 7 for row in rows)
    assert isinstance(exports["Campaigns"].last_run_date, int)
    assert exports["Advocates"].destination["Password"]
    assert exports["Advocates"].status == "inactive"
    assert exports["Conversions"].archive is None


def test_demo_entry_point(tmp_path: Path) -> None:
    port_file = tmp_path / "stand-in.json"
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.stand_ins.oktopost_stand_in",
            "--port-file",
            str(port_file),
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        info = json.loads(port_file.read_text())
        demo = OktopostStandIn(account_id=info["account_id"], api_key=info["api_key"])
        token = base64.b64encode(f"{demo.account_id}:{demo.api_key}".encode()).decode()
        status, _, body = _request(
            info["base_url"] + "/bi-export", {"Authorization": f"Basic {token}"}
        )
        assert (status, json.loads(body)["Total"]) == (200, 4)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0

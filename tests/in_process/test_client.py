"""The HTTP policy, driving the real client in-process with a fake clock and sleep.

The API is the local stand-in; the requests faults it cannot make come from a tiny
canned server on 127.0.0.1. Nothing here sleeps for real.
"""

from __future__ import annotations

import base64
import email.utils
import logging
import random
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.auth import HTTPBasicAuth

from tap_oktopost.api.client import OktopostClient
from tap_oktopost.api.errors import (
    ExpiredLinkError,
    OktopostError,
    RateLimitedError,
    RetriableOktopostError,
)
from tap_oktopost.api.retry import (
    CALL_WINDOW_MARGIN_SECONDS,
    MAX_BACKOFF_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    CallThrottle,
    api_status_error,
    call_log_path,
    oktopost_message,
    retry_after_seconds,
    retry_settings,
    retry_wait,
    retrying,
    storage_status_error,
)
from tap_oktopost.api.transport import storage_session
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, StandInExport, make_zip

EXPORT = "032000000000101"
NOW = 1_800_000_000.0  # the fake wall clock, for Retry-After dates


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(stand_in: OktopostStandIn) -> OktopostStandIn:
    stand_in.add_export(
        StandInExport(
            id=EXPORT,
            last_run_date="2026-11-27 10:00:00",
            archive=make_zip({"a.csv": "x\n1\n"}),
        )
    )
    return stand_in


def make_client(
    base_url: str,
    clock: FakeClock,
    *,
    account_id: str = "acme-account",
    api_key: str = "s3cr3t-api-key-0123456789",
    **settings: Any,
) -> OktopostClient:
    config = {
        "account_id": account_id,
        "api_key": api_key,
        "base_url": base_url,
        "max_retries": 2,
        **settings,
    }
    return OktopostClient(
        base_url,
        HTTPBasicAuth(account_id, api_key),
        **retry_settings(config),
        logger=logging.getLogger("tap-oktopost-test"),
        call_log=call_log_path(base_url, account_id),
        sleep=clock.sleep,
        clock=clock,
        wall_clock=lambda: NOW,
        jitter=lambda low, high: high,  # the ceiling: the worst wait allowed
    )


def client_for(
    stand_in: OktopostStandIn, clock: FakeClock, **settings: Any
) -> OktopostClient:
    return make_client(
        stand_in.base_url,
        clock,
        account_id=stand_in.account_id,
        api_key=stand_in.api_key,
        **settings,
    )


def api_calls(stand_in: OktopostStandIn, prefix: str) -> int:
    return sum(
        1 for r in stand_in.requests if r.server == "api" and r.path.startswith(prefix)
    )


# -- the throttle --------------------------------------------------------------


def test_the_client_waits_once_sixty_calls_fill_a_minute(
    api: OktopostStandIn, clock: FakeClock
) -> None:
    client = client_for(api, clock)
    for _ in range(62):
        client.check_credentials()

    assert clock.slept == [pytest.approx(60.0 + CALL_WINDOW_MARGIN_SECONDS)]
    assert api_calls(api, "/v2/me") == 62


def test_throttle_keeps_every_minute_under_sixty_calls(clock: FakeClock) -> None:
    throttle = CallThrottle(clock=clock, sleep=clock.sleep)
    calls = []
    for _ in range(300):
        throttle.wait_for_turn()
        calls.append(clock.now)
        clock.now += 0.01
    for index, start in enumerate(calls):
        assert len([t for t in calls[index:] if t < start + 60]) <= 60
    assert calls[-1] >= 4 * 60


def test_throttle_does_not_wait_under_the_limit(clock: FakeClock) -> None:
    throttle = CallThrottle(clock=clock, sleep=clock.sleep)
    for _ in range(60):
        throttle.wait_for_turn()
        clock.now += (60.0 + CALL_WINDOW_MARGIN_SECONDS) / 60
    throttle.wait_for_turn()
    assert clock.slept == []


# -- headers -------------------------------------------------------------------


def test_api_calls_send_basic_auth(api: OktopostStandIn, clock: FakeClock) -> None:
    client_for(api, clock).check_credentials()

    expected = base64.b64encode(f"{api.account_id}:{api.api_key}".encode()).decode()
    assert api.requests[-1].headers["Authorization"] == f"Basic {expected}"
    assert api.requests[-1].headers["Accept"] == "application/json"


def test_storage_calls_send_no_credentials_even_from_netrc(
    api: OktopostStandIn,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    link = client_for(api, clock).get_export(EXPORT)["LastRunFile"]

    with storage_session() as session:
        got = session.get(link, timeout=10)

    assert got.status_code == 200
    assert got.content == make_zip({"a.csv": "x\n1\n"})
    download = api.downloads()[-1]
    assert "Authorization" not in download.headers
    assert download.headers["Accept-Encoding"] == "identity"


# -- waits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "wait", "logged"),
    [
        ("7", 7.0, "retry 1 of 2 in 7 s as its Retry-After header asks"),
        (
            email.utils.formatdate(NOW + 30, usegmt=True),
            30.0,
            "retry 1 of 2 in 30 s as its Retry-After header asks",
        ),
        (
            email.utils.formatdate(NOW - 30, usegmt=True),
            0.0,
            "retry 1 of 2 in 0 s as its Retry-After header asks",
        ),
        (
            email.utils.formatdate(NOW + MAX_RETRY_AFTER_SECONDS, usegmt=True),
            MAX_RETRY_AFTER_SECONDS,
            "retry 1 of 2 in 3600 s as its Retry-After header asks",
        ),
        ("3600", 3600.0, "retry 1 of 2 in 3600 s as its Retry-After header asks"),
        ("soon", 900.0, "retry 1 of 2 in 900 s (rate_limit_wait_seconds)"),
        (None, 900.0, "retry 1 of 2 in 900 s (rate_limit_wait_seconds)"),
    ],
)
def test_a_429_waits_as_asked_or_the_lockout(
    api: OktopostStandIn,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    retry_after: str | None,
    wait: float,
    logged: str,
) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    api.fail_next("/v2/me", 429, headers=headers)
    client_for(api, clock, rate_limit_wait_seconds=900).check_credentials()

    assert clock.slept == [wait]
    assert (
        "Checking credentials (GET /me): Oktopost's rate limit (HTTP 429)"
        in caplog.text
    )
    assert logged in caplog.text


def test_a_burst_of_5xx_backs_off_exponentially_up_to_the_cap(
    api: OktopostStandIn, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    api.fail_next("/v2/me", 503, times=8)
    client_for(api, clock, max_retries=8).check_credentials()

    assert clock.slept == [1, 2, 4, 8, 16, 32, MAX_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS]
    assert "GET /me): HTTP 503 from Oktopost: retry 1 of 8 in 1 s" in caplog.text


def test_backoff_jitter_stays_within_each_ceiling(clock: FakeClock) -> None:
    failures = iter(range(10))

    def call() -> str:
        if next(failures) < 9:
            raise RetriableOktopostError("flaky")
        return "done"

    result = retrying(
        call,
        max_retries=9,
        rate_limit_wait=900,
        logger=logging.getLogger("test"),
        sleep=clock.sleep,
        jitter=random.Random(7).uniform,  # noqa: S311 - jitter, not a secret
    )

    assert result == "done"
    ceilings = [min(2.0**n, MAX_BACKOFF_SECONDS) for n in range(9)]
    assert all(
        0 <= wait <= top for wait, top in zip(clock.slept, ceilings, strict=True)
    )
    assert len(set(clock.slept)) == 9


def test_the_backoff_ceiling_holds_for_any_number_of_retries() -> None:
    error = RetriableOktopostError("flaky")

    wait, _ = retry_wait(error, 5000, rate_limit_wait=900, jitter=lambda lo, hi: hi)

    assert wait == MAX_BACKOFF_SECONDS


def test_a_503_with_retry_after_waits_as_asked(
    api: OktopostStandIn, clock: FakeClock
) -> None:
    api.fail_next("/v2/me", 503, headers={"Retry-After": "12"})
    client_for(api, clock).check_credentials()

    assert clock.slept == [12.0]


def test_retries_end_with_the_last_error(
    api: OktopostStandIn, clock: FakeClock
) -> None:
    api.fail_next("/v2/me", 502, times=10)
    client = client_for(api, clock, max_retries=2)

    with pytest.raises(
        RetriableOktopostError, match=r"GET /me\): HTTP 502 from Oktopost"
    ):
        client.check_credentials()
    assert len(clock.slept) == 2
    assert api_calls(api, "/v2/me") == 3


def test_the_retry_warning_names_the_error(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = iter([RetriableOktopostError("Export 1: HTTP 500 from Oktopost"), None])

    def call() -> None:
        error = next(attempts)
        if error is not None:
            raise error

    retrying(
        call,
        max_retries=5,
        rate_limit_wait=900,
        logger=logging.getLogger("test"),
        sleep=clock.sleep,
        jitter=lambda low, high: high,
    )

    assert caplog.messages == ["Export 1: HTTP 500 from Oktopost: retry 1 of 5 in 1 s"]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("²", None),
        ("Fri, 31 Dec 99999 23:59:59 GMT", None),
        ("Wed, 21 Oct 2015 07:28:00 -0000", 0.0),
        (email.utils.formatdate(NOW + 45, usegmt=False), 45.0),
    ],
)
def test_retry_after_is_read_without_ever_raising(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(header, lambda: NOW) == seconds


# -- requests faults -----------------------------------------------------------


class _Canned(BaseHTTPRequestHandler):
    """Answers by path with the broken responses the stand-in cannot make."""

    protocol_version = "HTTP/1.1"
    hits: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.path.startswith("/v2/cut"):
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nContent-Length: 100\r\n\r\n" + b'{"Result": tr'
            )
        elif self.path.startswith("/v2/gzip"):
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
                b"Content-Length: 12\r\n\r\nnot gzip!!!!"
            )
        elif self.path.startswith("/v2/loop"):
            self.wfile.write(
                b"HTTP/1.1 302 Found\r\nLocation: /v2/loop\r\nConnection: close\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
        self.close_connection = True


@pytest.fixture
def canned() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Handler", (_Canned,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v2", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a read timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.fixture
def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def assert_no_chained_cause(error: BaseException) -> None:
    # Not even a suppressed context: structured logging prints it all the same.
    assert error.__cause__ is None
    assert error.__context__ is None


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/cut", "was cut off (ChunkedEncodingError)"),
        ("/gzip", "could not be decoded (ContentDecodingError)"),
    ],
)
def test_a_broken_body_is_retried(
    canned: tuple[str, list[str]], clock: FakeClock, path: str, words: str
) -> None:
    base_url, hits = canned
    client = make_client(base_url, clock, max_retries=2)

    with pytest.raises(RetriableOktopostError) as caught:
        client.get(path, "Listing exports (page 0)")

    assert (
        str(caught.value)
        == f"Listing exports (page 0): the answer from {base_url} {words}"
    )
    assert len(hits) == 3
    assert len(clock.slept) == 2
    assert_no_chained_cause(caught.value)


def test_no_connection_is_retried_and_names_the_setting(
    closed_port: int, clock: FakeClock
) -> None:
    base_url = f"http://127.0.0.1:{closed_port}/v2"
    client = make_client(base_url, clock, max_retries=1)

    with pytest.raises(RetriableOktopostError) as caught:
        client.check_credentials()

    assert str(caught.value) == (
        f"Checking credentials (GET /me): could not reach {base_url}; check the "
        "base_url setting and the network (ConnectionError)"
    )
    assert len(clock.slept) == 1
    assert_no_chained_cause(caught.value)


def test_no_answer_in_time_is_retried_and_names_the_timeout(
    silent_port: int, clock: FakeClock
) -> None:
    client = make_client(f"http://127.0.0.1:{silent_port}/v2", clock, max_retries=1)
    client.timeout = 0.05

    with pytest.raises(RetriableOktopostError) as caught:
        client.check_credentials()

    assert "check the request_timeout setting and the network (ReadTimeout)" in str(
        caught.value
    )
    assert len(clock.slept) == 1


@pytest.mark.parametrize(
    ("base_url", "words"),
    [
        ("http://", "is not a usable URL; check the base_url setting (InvalidURL)"),
        (
            "127.0.0.1/v2",
            "is not a usable URL; check the base_url setting (MissingSchema)",
        ),
    ],
)
def test_an_unusable_base_url_fails_at_once(
    clock: FakeClock, base_url: str, words: str
) -> None:
    client = make_client(base_url, clock)

    with pytest.raises(OktopostError) as caught:
        client.check_credentials()

    assert not isinstance(caught.value, RetriableOktopostError)
    assert str(caught.value).startswith("Checking credentials (GET /me): ")
    assert words in str(caught.value)
    assert clock.slept == []
    assert_no_chained_cause(caught.value)


def test_a_redirect_loop_fails_at_once(
    canned: tuple[str, list[str]], clock: FakeClock
) -> None:
    base_url, hits = canned
    client = make_client(base_url, clock)

    with pytest.raises(OktopostError) as caught:
        client.get("/loop", "Export 1")

    assert str(caught.value) == (
        f"Export 1: {base_url} redirects in a loop; check the base_url setting "
        "(TooManyRedirects)"
    )
    assert not isinstance(caught.value, RetriableOktopostError)
    assert len(hits) == requests.models.DEFAULT_REDIRECT_LIMIT + 1
    assert clock.slept == []
    assert_no_chained_cause(caught.value)


@pytest.mark.parametrize(
    ("body", "quoted"),
    [
        (b"<html>Bad gateway</html>", "with no JSON: '<html>Bad gateway</html>'"),
        (b"x" * 5000, "with no JSON: '" + "x" * 200 + "'"),
        (
            b'{"Result": false, "Errors": {"API": {"Error": "Campaign not found"}}}',
            "Result false: API.Error: Campaign not found",
        ),
    ],
)
def test_an_unusable_200_quotes_a_short_snippet(
    api: OktopostStandIn, clock: FakeClock, body: bytes, quoted: str
) -> None:
    api.fail_next(f"/v2/bi-export/{EXPORT}", 200, body=body)

    with pytest.raises(OktopostError) as caught:
        client_for(api, clock).get_export(EXPORT)

    assert str(caught.value).startswith(f"Export {EXPORT}: Oktopost answered")
    assert str(caught.value).endswith(quoted)
    assert clock.slept == []


# -- advice per status ---------------------------------------------------------


def test_wrong_credentials_name_the_settings(
    api: OktopostStandIn, clock: FakeClock
) -> None:
    client = make_client(
        api.base_url, clock, account_id=api.account_id, api_key="wrong"
    )

    with pytest.raises(
        OktopostError, match="HTTP 401, check the account_id and api_key"
    ):
        client.check_credentials()
    assert api_calls(api, "/v2/me") == 1


@pytest.mark.parametrize("path", ["/v3", "", "/v2/v2"])
def test_a_wrong_api_root_names_base_url_not_an_export(
    api: OktopostStandIn, clock: FakeClock, path: str
) -> None:
    base_url = api.base_url.removesuffix("/v2") + path
    client = make_client(
        base_url, clock, account_id=api.account_id, api_key=api.api_key
    )

    with pytest.raises(OktopostError) as credentials:
        client.check_credentials()
    with pytest.raises(OktopostError) as listing:
        client.list_exports()

    for caught in (credentials, listing):
        assert "HTTP 404, no such API path: check the base_url setting" in str(
            caught.value
        )
        assert "export" not in str(caught.value).split("HTTP 404")[1].lower()
    assert clock.slept == []


def test_an_unknown_export_names_the_export_settings(
    api: OktopostStandIn, clock: FakeClock
) -> None:
    with pytest.raises(OktopostError) as caught:
        client_for(api, clock).get_export("032000000000999")

    assert str(caught.value).startswith(
        "Export 032000000000999: HTTP 404, check the export id (export_ids / "
        "test_export_id settings)"
    )
    assert str(caught.value).endswith("Oktopost said: API.Error: Export not found")
    assert clock.slept == []


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (403, "HTTP 403, the API key's user lacks permission for this"),
        (400, "HTTP 400, Oktopost rejected the request"),
        (410, "HTTP 410, Oktopost rejected the request"),
    ],
)
def test_other_client_errors_are_not_retried(
    api: OktopostStandIn, clock: FakeClock, status: int, advice: str
) -> None:
    api.fail_next("/v2/bi-export?", status, times=5)

    with pytest.raises(OktopostError) as caught:
        client_for(api, clock).list_exports()

    assert not isinstance(caught.value, RetriableOktopostError)
    assert str(caught.value).startswith(f"Listing exports (page 0): {advice}")
    assert api_calls(api, "/v2/bi-export?") == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_api_statuses_that_may_pass_are_retriable(status: int) -> None:
    error = api_status_error(status, path="/me", what="GET /me", oktopost_said="")
    assert isinstance(error, RetriableOktopostError)
    assert isinstance(error, RateLimitedError) == (status == 429)


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (403, ExpiredLinkError, "HTTP 403, the signed link expired or was refused"),
        (408, RetriableOktopostError, "HTTP 408 from the file storage"),
        (429, RetriableOktopostError, "HTTP 429 from the file storage"),
        (500, RetriableOktopostError, "HTTP 500 from the file storage"),
        (503, RetriableOktopostError, "HTTP 503 from the file storage"),
        (
            404,
            OktopostError,
            "HTTP 404, the file is gone from storage; a newer run may have replaced "
            "it, and the next sync loads that",
        ),
        (400, OktopostError, "HTTP 400, the file storage refused the link"),
    ],
)
def test_storage_statuses(status: int, kind: type[OktopostError], words: str) -> None:
    error = storage_status_error(status, "Export 1: downloading https://store/x.zip")

    assert type(error) is kind
    assert str(error) == f"Export 1: downloading https://store/x.zip: {words}"


def test_a_storage_429_backs_off_rather_than_waiting_out_a_lockout(
    clock: FakeClock,
) -> None:
    errors = iter([storage_status_error(429, "download"), None])

    def call() -> None:
        error = next(errors)
        if error is not None:
            raise error

    retrying(
        call,
        max_retries=1,
        rate_limit_wait=900,
        logger=logging.getLogger("test"),
        sleep=clock.sleep,
        jitter=lambda low, high: high,
    )

    assert clock.slept == [1.0]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (
            {"Result": False, "Errors": {"API": {"Error": "Campaign not found"}}},
            "API.Error: Campaign not found",
        ),
        (
            {"Errors": {"Param": {"get": "Missing value for parameter postId"}}},
            "Param.get: Missing value for parameter postId",
        ),
        ({"Result": False, "Errors": []}, "no error message"),
        ({"Result": False, "Errors": ["one", {"Two": "two"}]}, "one; Two: two"),
        (None, "no error message"),
    ],
)
def test_oktopost_messages_of_every_shape(body: object, text: str) -> None:
    assert oktopost_message(body) == text


def test_fractional_settings_become_numbers_sleep_accepts() -> None:
    # The SDK reads 0.5 in a JSON config as Decimal; time.sleep refuses a Decimal.
    config = {
        "request_timeout": Decimal("30.5"),
        "max_retries": Decimal(3),
        "rate_limit_wait_seconds": Decimal("0.5"),
    }

    settings = retry_settings(config)

    assert settings == {"timeout": 30.5, "max_retries": 3, "rate_limit_wait": 0.5}
    assert [type(value) for value in settings.values()] == [float, int, float]

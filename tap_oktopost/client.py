"""HTTP policy for the Oktopost API and its object storage: errors, waits, retries.

One place decides which answers are retried (408, 429, 5xx; on storage also 403, an
expired link), how long to wait (Retry-After, the rate-limit lockout, or jittered
backoff) and what advice a fatal answer carries, so the API client and the downloads
agree.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import fcntl
import hashlib
import ipaddress
import json
import logging
import math
import os
import random
import re
import socket
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase, HTTPBasicAuth
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

US_BASE_URL = "https://api.oktopost.com/v2"
EU_BASE_URL = "https://eu-api.oktopost.com/v2"
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_RATE_LIMIT_WAIT_SECONDS = 900.0
"""Oktopost locks a key that went over its rate limit for about 15 minutes."""
MAX_BACKOFF_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 3600.0
"""The longest Retry-After the tap waits out; a longer one fails the call at once,
saying when to try again, rather than leave an orchestrator watching a hung task."""
CALLS_PER_WINDOW = 60
CALL_WINDOW_SECONDS = 60.0
"""Oktopost allows a key 60 calls a minute, counted in any sliding minute."""
CALL_WINDOW_MARGIN_SECONDS = 2.0
"""Added to the window: a call is logged before it is sent and reaches Oktopost a
little later, so the server's minute may start after the tap's."""
CALL_LOG_DIR: Path | None = None
"""Where the call logs shared by the tap's processes live; None: the temp folder."""
MAX_API_ANSWER_BYTES = 8 * 1024 * 1024
"""Oktopost's largest answer, a page of exports, is kilobytes; past this (counted
after any gzip is inflated) an answer is refused before it can fill memory."""
MAX_PAGES = 1000
"""Pages of exports read at most: at 60 calls a minute, 17 minutes of the 20,000
calls a day Oktopost allows a key, and far more exports than an account has."""
MAX_PASSES = 4
"""Passes over the pages at most, while exports come and go as the tap lists them."""
STALLED_PAGES = 3
"""Full pages in a row with no export unseen before that end a listing: one is
normal when an export was created while paging, three are a server in a loop."""
PIECE_BYTES = 64 * 1024
MAX_QUOTED = 500
"""Characters of Oktopost's own error text quoted in a message, at most."""
RETRIED_STATUSES = frozenset({408, 429})
"""Besides every 5xx: answers that may pass if asked again."""
_SECONDS = re.compile(r"[0-9]+")
T = TypeVar("T")


class OktopostError(Exception):
    """An Oktopost answer the tap cannot use; the message says what to check."""


class RetriableOktopostError(OktopostError):
    """A fault that may pass: server error, network trouble, a cut-off download.

    `retry_after` is the pause the server asked for, in seconds, if it asked.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitedError(RetriableOktopostError):
    """HTTP 429 from the API: without Retry-After, wait out the key's lockout."""


class ExpiredLinkError(RetriableOktopostError):
    """HTTP 403 from storage: the signed link expired; ask the API for a fresh one."""


def printable(text: str) -> str:
    """Escape control characters and newlines, so a name keeps a log line one line."""
    return "".join(
        character if character.isprintable() else repr(character)[1:-1]
        for character in text
    )


def is_retried_status(status: int) -> bool:
    """Say whether an HTTP status may pass if the same request is made again."""
    return status in RETRIED_STATUSES or status >= 500


def retry_after_seconds(
    header: str | None, now: Callable[[], float] = time.time
) -> float | None:
    """Read a Retry-After header (seconds or an HTTP date); None if unreadable.

    Never raises, whatever the server sends; a date in the past means no wait.
    The value is not capped here: `retry_wait` caps it and says so.
    """
    if header is None:
        return None
    text = header.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    parsed = email.utils.parsedate_tz(text)
    if parsed is None:
        return None
    try:
        moment = email.utils.mktime_tz(parsed)
    except (OverflowError, ValueError, TypeError):
        return None
    return max(0.0, moment - now())


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.1f}".removesuffix(".0")


def too_long_a_wait(
    error: RetriableOktopostError, now: Callable[[], float] = time.time
) -> OktopostError | None:
    """Make the error for a Retry-After past MAX_RETRY_AFTER_SECONDS, else None.

    It says what the server asked, the cap, and from when a new try may pass.
    """
    asked = error.retry_after
    if asked is None or asked <= MAX_RETRY_AFTER_SECONDS:
        return None
    try:
        moment = datetime.datetime.fromtimestamp(now() + asked, datetime.timezone.utc)
        when = f"after {moment:%Y-%m-%d %H:%M:%S} UTC"
    except (OverflowError, ValueError, OSError):
        when = "after the year 9999, as the server has it"
    message = (
        f"{error}: its Retry-After header asks for a wait of "
        f"{_format_seconds(asked)} s, past the tap's cap of "
        f"{_format_seconds(MAX_RETRY_AFTER_SECONDS)} s, so the call fails now "
        f"instead of waiting; try again {when}"
    )
    return OktopostError(message)


def retry_wait(
    error: RetriableOktopostError,
    attempt: int,
    *,
    rate_limit_wait: float,
    jitter: Callable[[float, float], float] = random.uniform,
) -> tuple[float, str]:
    """Choose the wait before retry number `attempt + 1`, and say why for the log.

    Retry-After wins (`too_long_a_wait` refuses one past the cap first); a 429
    without it waits `rate_limit_wait`; anything else backs off exponentially
    with full jitter.
    """
    if error.retry_after is not None:
        return error.retry_after, " as its Retry-After header asks"
    if isinstance(error, RateLimitedError):
        reason = (
            " (rate_limit_wait_seconds), for Oktopost's lockout of a key that went "
            "over its rate limit to pass"
        )
        return rate_limit_wait, reason
    # The inner min keeps 2.0**attempt finite for any max_retries setting.
    ceiling = min(2.0 ** min(attempt, 32), MAX_BACKOFF_SECONDS)
    return jitter(0.0, ceiling), ""


def retrying(
    call: Callable[[], T],
    *,
    max_retries: int,
    rate_limit_wait: float,
    logger: logging.Logger,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[float, float], float] = random.uniform,
    now: Callable[[], float] = time.time,
) -> T:
    """Run `call`, retrying RetriableOktopostError up to `max_retries` times.

    A Retry-After past MAX_RETRY_AFTER_SECONDS ends the call at once. A
    hand-written loop rather than `backoff`: the wait needs the exception (for
    Retry-After), the sleep must be injectable for tests, and the two packages that
    install a `backoff` module hand the exception to handlers differently.
    """
    attempt = 0
    while True:
        try:
            return call()
        except RetriableOktopostError as error:
            failure = error
        # Raised out of the handler, as every error of this module: no chained
        # exception quoting a URL for a log formatter to print.
        if (refusal := too_long_a_wait(failure, now)) is not None:
            raise refusal
        if attempt >= max_retries:
            raise failure
        wait, reason = retry_wait(
            failure, attempt, rate_limit_wait=rate_limit_wait, jitter=jitter
        )
        attempt += 1
        logger.warning(
            "%s: retry %d of %d in %s s%s",
            failure,
            attempt,
            max_retries,
            _format_seconds(wait),
            reason,
        )
        sleep(wait)


_WALL_CLOCK_LEAD = time.time() - time.monotonic()
"""Read once a process, so that every throttle of the process agrees on it."""


def call_log_path(base_url: str, account_id: str) -> Path:
    """Name the call log of an account: a hash of base_url and account, no secret."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\n{account_id}".encode())
    folder = CALL_LOG_DIR if CALL_LOG_DIR is not None else Path(tempfile.gettempdir())
    return folder / f"tap-oktopost-calls-{os.getuid()}-{digest.hexdigest()[:32]}"


class CallThrottle:
    """Keeps an account under Oktopost's 60 calls in any minute, across processes.

    Meltano runs discovery and the sync as two processes, one right after the
    other: with `log`, each call's time goes into that file (see `call_log_path`),
    read and rewritten under an exclusive `fcntl` lock, so the sync counts the
    calls discovery just made. A missing, unreadable or garbled log counts as no
    calls, and times in the future are dropped. Without `log`, or when the file
    cannot be used or is a link (see `_own_plain_file`), this process counts
    alone. Other tools sharing the key can still cause a 429, which `retrying`
    waits out.

    The limits default to the module's constants at construction, so that a test
    can shrink the window. `clock` (monotonic) and `sleep` are injectable; the log
    holds wall-clock times, the clock plus the wall clock's lead on the monotonic
    one, which processes of one machine share.
    """

    def __init__(
        self,
        log: Path | None = None,
        *,
        calls: int | None = None,
        window: float | None = None,
        margin: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.log = log
        self.calls = CALLS_PER_WINDOW if calls is None else calls
        self.window = CALL_WINDOW_SECONDS if window is None else window
        self.margin = CALL_WINDOW_MARGIN_SECONDS if margin is None else margin
        self.clock = clock
        self.sleep = sleep
        self.offset = _WALL_CLOCK_LEAD
        self.own: list[float] = []

    def wait_for_turn(self) -> None:
        """Sleep until one more call keeps every window under its limit; log it."""
        span = self.window + self.margin
        while True:
            with self._times() as times:
                now = self.clock() + self.offset
                times[:] = sorted(t for t in times if now - span < t <= now + 1.0)
                if len(times) < self.calls:
                    times.append(now)
                    return
                wait = times[len(times) - self.calls] + span - now
            self.sleep(wait)

    @contextlib.contextmanager
    def _times(self) -> Iterator[list[float]]:
        """Give the logged call times, to change in place; written back after."""
        if self.log is None:
            yield self.own
            return
        try:
            descriptor = os.open(
                self.log, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600
            )
        except OSError:
            yield self.own
            return
        with os.fdopen(descriptor, "r+b") as file:
            times: list[float] | None = None
            try:
                if _own_plain_file(os.fstat(descriptor)):
                    fcntl.flock(file, fcntl.LOCK_EX)
                    times = _read_times(file.read(64 * 1024))
            except OSError:
                times = None
            if times is None:
                yield self.own
                return
            yield times
            with contextlib.suppress(OSError):  # a full disk: the log counts less
                file.seek(0)
                file.truncate()
                file.write("".join(f"{t!r}\n" for t in times).encode())
            self.own = times  # the last count seen, should the log become unusable


def _own_plain_file(status: os.stat_result) -> bool:
    """Say whether a call log is safe to rewrite: no link another user planted.

    The temp folder is shared; a symlink there is refused by O_NOFOLLOW, and a
    hard link or a file of another user here, so no other file is ever written.
    """
    return (
        stat.S_ISREG(status.st_mode)
        and status.st_uid == os.getuid()
        and status.st_nlink == 1
    )


def _read_times(data: bytes) -> list[float]:
    """Read a call log's times, one a line; skip what is not a finite number."""
    times = []
    for line in data.decode("ascii", "replace").splitlines():
        try:
            value = float(line)
        except ValueError:
            continue
        if math.isfinite(value):
            times.append(value)
    return times


def oktopost_message(body: Any) -> str:
    """Flatten Oktopost's `Errors` (an object of objects, a list, or absent)."""
    errors = body.get("Errors") if isinstance(body, dict) else None
    parts: list[str] = []

    def collect(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                collect(item, f"{where}.{key}" if where else str(key))
        elif isinstance(value, list):
            for item in value:
                collect(item, where)
        elif value not in (None, ""):
            parts.append(f"{where}: {value}" if where else str(value))

    collect(errors, "")
    said = printable("; ".join(parts)) or "no error message"
    return said if len(said) <= MAX_QUOTED else f"{said[:MAX_QUOTED]}..."


def _api_advice(status: int, path: str) -> str:
    """Say what to check after a refused API call; a 404's cause is in its path."""
    if status == 401:
        return (
            "check the account_id and api_key settings, and that base_url is your "
            "account's region (US or EU)"
        )
    if status == 403:
        return (
            "the API key's user lacks permission for this; check its role in Oktopost"
        )
    if status == 404 and path.startswith("/bi-export/"):
        return (
            "check the export id (export_ids / test_export_id settings) and that the "
            "API key's user can see it; if every export gets this, check base_url"
        )
    if status == 404:
        return (
            f"no such API path: check the base_url setting, the API root ending in "
            f"/v2 ({US_BASE_URL} or {EU_BASE_URL})"
        )
    return "Oktopost rejected the request"


def api_status_error(
    status: int,
    *,
    path: str,
    what: str,
    oktopost_said: str,
    retry_after: float | None = None,
) -> OktopostError:
    """Make the error for an API answer of HTTP 400 or more: retried, or advice."""
    if status == 429:
        message = f"{what}: Oktopost's rate limit (HTTP 429)"
        return RateLimitedError(message, retry_after)
    if is_retried_status(status):
        return RetriableOktopostError(
            f"{what}: HTTP {status} from Oktopost", retry_after
        )
    advice = _api_advice(status, path)
    return OktopostError(
        f"{what}: HTTP {status}, {advice}. Oktopost said: {oktopost_said}"
    )


def storage_status_error(
    status: int, where: str, retry_after: float | None = None
) -> OktopostError:
    """Make the error for a signed-link answer that is not the file.

    403 is an expired link (ExpiredLinkError: ask the API for a fresh one), 408, 429
    and 5xx may pass (RetriableOktopostError), any other status is fatal. A 429 here
    is the store's, not Oktopost's: without Retry-After it backs off, no lockout wait.
    """
    if status == 403:
        message = f"{where}: HTTP 403, the signed link expired or was refused"
        return ExpiredLinkError(message, retry_after)
    if is_retried_status(status):
        message = f"{where}: HTTP {status} from the file storage"
        return RetriableOktopostError(message, retry_after)
    if status in {404, 410}:
        message = (
            f"{where}: HTTP {status}, the file is gone from storage; a newer run "
            "may have replaced it, and the next sync loads that"
        )
        return OktopostError(message)
    return OktopostError(f"{where}: HTTP {status}, the file storage refused the link")


_RequestFault = tuple[tuple[type[requests.RequestException], ...], bool, str]
_REQUEST_FAULTS: tuple[_RequestFault, ...] = (
    (
        (requests.exceptions.SSLError,),
        False,
        "TLS failed with {target}; check {check} and the machine's CA certificates",
    ),
    (
        (requests.Timeout,),
        True,
        "no answer from {target} in time; check the request_timeout setting and "
        "the network",
    ),
    (
        (requests.ConnectionError,),
        True,
        "could not reach {target}; check {check} and the network",
    ),
    (
        (requests.exceptions.ChunkedEncodingError,),
        True,
        "the answer from {target} was cut off",
    ),
    (
        (requests.exceptions.ContentDecodingError,),
        True,
        "the answer from {target} could not be decoded",
    ),
    (
        (requests.TooManyRedirects,),
        False,
        "{target} redirects in a loop; check {check}",
    ),
    (
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ),
        False,
        "{target} is not a usable URL; check {check}",
    ),
)
"""Request faults in the order they are told apart: SSLError is a ConnectionError
that will not pass, ConnectTimeout both a ConnectionError and a Timeout."""


def request_error(
    error: requests.RequestException,
    what: str,
    *,
    target: str,
    check: str = "the base_url setting",
) -> OktopostError:
    """Turn a request that got no usable answer into an error to raise `from None`.

    Network trouble, timeouts and cut-off or undecodable bodies are retried; a bad
    URL, a redirect loop or a TLS failure will not pass, so they name `check`.
    Never quotes `error`: its text holds the full URL, a signed link's signature.
    """
    kind = type(error).__name__
    for types, retried, text in _REQUEST_FAULTS:
        if isinstance(error, types):
            message = f"{what}: {text.format(target=target, check=check)} ({kind})"
            return (
                RetriableOktopostError(message) if retried else OktopostError(message)
            )
    return OktopostError(f"{what}: {kind} calling {target}; check {check}")


_URLLIB3_FAULTS: tuple[
    tuple[type[urllib3.exceptions.HTTPError], type[requests.RequestException]], ...
] = (
    (urllib3.exceptions.ReadTimeoutError, requests.exceptions.ReadTimeout),
    (urllib3.exceptions.SSLError, requests.exceptions.SSLError),
    (urllib3.exceptions.DecodeError, requests.exceptions.ContentDecodingError),
    (urllib3.exceptions.HTTPError, requests.exceptions.ChunkedEncodingError),
)
"""urllib3's read faults, as the requests exceptions `request_error` tells apart."""


def body_pieces(
    response: requests.Response, piece_bytes: int = PIECE_BYTES
) -> Iterator[bytes]:
    """Yield an answer's body as it comes, gzip inflated, `piece_bytes` at most.

    `read1` gives what the connection has rather than waiting for a whole piece, so
    the caller sees its clock between pieces even from a server sending a byte at a
    time; inflating is bounded per piece too, so a gzip bomb is counted as it grows.
    """
    raw = response.raw
    while True:
        fault: requests.RequestException | None = None
        try:
            piece = raw.read1(piece_bytes, decode_content=True)
        except urllib3.exceptions.HTTPError as error:
            fault = next(
                made() for kind, made in _URLLIB3_FAULTS if isinstance(error, kind)
            )
        if fault is not None:
            raise fault  # out of the handler: urllib3's text quotes the whole URL
        if not piece:
            return
        yield piece


def read_answer(
    response: requests.Response,
    *,
    what: str,
    deadline: float,
    clock: Callable[[], float],
    limit: int = MAX_API_ANSWER_BYTES,
) -> bytes:
    """Read a whole API answer, refusing one past `limit` bytes or `deadline`."""
    body = bytearray()
    for piece in body_pieces(response):
        body += piece
        if len(body) > limit:
            message = (
                f"{what}: the answer passed {limit} bytes, far more than Oktopost "
                "ever sends; refusing it"
            )
            raise OktopostError(message)
        if clock() > deadline:
            raise too_slow(what)
    return bytes(body)


def too_slow(what: str) -> RetriableOktopostError:
    """Make the error for an answer not whole within request_timeout."""
    message = (
        f"{what}: the answer did not come whole within the request_timeout setting; "
        "the server sends too slowly"
    )
    return RetriableOktopostError(message)


class RequestDeadline:
    """Ends a request that is not done by its deadline, whatever it is waiting for.

    `timeout` bounds each socket read, so a server trickling its status line, its
    headers or a chunk's size line a byte at a time keeps `requests` waiting for
    ever; urllib3's `Timeout(total=...)` bounds the connect plus one read, not the
    request. While this is entered, the requests this thread makes (redirects
    included) on a session from `CredentialFreeSession` are watched: at the
    deadline a watcher thread shuts their sockets down, which wakes the read
    blocked on them, and `ended` says whether that broke the request. `extend`
    moves the deadline, for a download making progress.
    """

    _current = threading.local()

    def __init__(self, seconds: float) -> None:
        # A little past `seconds`: a silent server's socket timeout, which says
        # more, fires first.
        self.seconds = seconds + min(1.0, max(0.05, seconds / 20))
        self.deadline = time.monotonic() + self.seconds
        self.expired = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> RequestDeadline:
        if getattr(self._current, "deadline", None) is not None:
            message = "a request's deadline cannot hold another request's"
            raise RuntimeError(message)
        self._current.deadline = self
        self._watcher.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._done.set()
        self._current.deadline = None

    def extend(self) -> None:
        """Give the request its time again, from now."""
        self.deadline = time.monotonic() + self.seconds

    def ended(self, error: requests.RequestException) -> bool:
        """Say whether the deadline, not the socket's own timeout, broke a request."""
        return self.expired and not isinstance(error, requests.Timeout)

    @classmethod
    def watch(cls, connection: HTTPConnection) -> None:
        """Watch a connection the current thread sends a request on, if it is timed."""
        deadline: RequestDeadline | None = getattr(cls._current, "deadline", None)
        if deadline is not None:
            with deadline._lock:
                deadline._connections.append(connection)

    def _watch(self) -> None:
        while not self._done.wait(max(0.0, self.deadline - time.monotonic())):
            if time.monotonic() < self.deadline:
                continue  # extended meanwhile
            with self._lock:
                if self._done.is_set():
                    return
                self.expired = True
                for connection in self._connections:
                    if connection.sock is not None:
                        with contextlib.suppress(OSError):
                            connection.sock.shutdown(socket.SHUT_RDWR)
            return


class _WatchedConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        RequestDeadline.watch(self)
        super().request(*args, **kwargs)


class _WatchedTlsConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        RequestDeadline.watch(self)
        super().request(*args, **kwargs)


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedTlsPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedTlsConnection


_WATCHED_POOLS = {"http": _WatchedPool, "https": _WatchedTlsPool}


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose connections a `RequestDeadline` can end, proxied or not."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """Watch connections through an HTTP(S) proxy; SOCKS keeps its own pools."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


def base_url_problem(base_url: str) -> str | None:
    """Say why base_url is refused, never quoting it: it may hold a password."""
    try:
        parts = urlsplit(base_url)
        userinfo = "@" in parts.netloc or parts.username or parts.password
    except ValueError:
        return "The base_url setting is not a URL"
    if userinfo:
        return (
            "The base_url setting holds a user name or password (user:password@); "
            "remove them: the tap signs in with the account_id and api_key settings"
        )
    return None


def _is_loopback(host: str | None) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class CredentialFreeSession(requests.Session):
    """A session taking proxies and CA bundles from the environment, never a password.

    With `trust_env` on (for HTTPS_PROXY and REQUESTS_CA_BUNDLE), requests reads
    ~/.netrc again after every redirect (`rebuild_auth`) and sends the password it
    finds there to wherever the server pointed. Here a redirect only loses the
    Authorization header when it leaves the host, as requests does; nothing is added.
    Its connections can be ended by a `RequestDeadline`.
    """

    def __init__(self) -> None:
        super().__init__()
        for prefix in ("http://", "https://"):
            self.mount(prefix, _WatchedAdapter())

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        """Strip the Authorization header on a redirect to another host; add none."""
        headers = prepared_request.headers
        if "Authorization" in headers and self.should_strip_auth(  # type: ignore[no-untyped-call]
            str(response.request.url), str(prepared_request.url)
        ):
            del headers["Authorization"]


class _NoAuth(AuthBase):
    """No credentials on a signed link, not even from ~/.netrc."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


def storage_session() -> requests.Session:
    """Make a session for signed links: no Authorization, the archive's own bytes.

    Object stores refuse a second auth method; `Accept-Encoding: identity` makes
    Content-Length and Range count the archive's bytes, not a gzip encoding of them.
    """
    session = CredentialFreeSession()
    session.auth = _NoAuth()
    session.headers["Accept-Encoding"] = "identity"
    return session


def retry_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Give the timeout and retry settings, with defaults, as keyword arguments.

    The SDK reads a JSON config's fractions as Decimal, which `time.sleep` and
    socket timeouts refuse: they are made plain numbers here.
    """
    return {
        "timeout": float(config.get("request_timeout", DEFAULT_TIMEOUT_SECONDS)),
        "max_retries": int(config.get("max_retries", DEFAULT_MAX_RETRIES)),
        "rate_limit_wait": float(
            config.get("rate_limit_wait_seconds", DEFAULT_RATE_LIMIT_WAIT_SECONDS)
        ),
    }


def _past_total(
    listed: _ListingPass, exports: list[dict[str, Any]], total: object
) -> bool:
    """Say whether a page past `Total` lists nothing new: the pages' end.

    Some servers answer every page number with the same last page. Before
    `Total` is reached, such a page is a shift (or a loop, if it goes on).
    """
    reached = (
        isinstance(total, int)
        and not isinstance(total, bool)
        and len(listed.exports) >= total
    )
    return reached and all(str(each.get("Id")) in listed.exports for each in exports)


@dataclass(frozen=True)
class ExportListing:
    """Every export a listing found, each once, in the order first seen.

    `incomplete` says why the listing stopped short of the end of the pages, if it
    did: the exports seen are listed all the same.
    """

    exports: list[dict[str, Any]]
    incomplete: str | None = None


@dataclass
class _ListingPass:
    """One pass over the pages: the exports by Id, and what the pages said."""

    exports: dict[str, dict[str, Any]] = field(default_factory=dict)
    totals: set[str] = field(default_factory=set)
    repeats: bool = False
    pages: int = 0
    incomplete: str | None = None

    def add(self, exports: list[dict[str, Any]]) -> int:
        """Keep each export not seen yet in this pass; count them."""
        before = len(self.exports)
        for export in exports:
            key = str(export.get("Id"))
            if key in self.exports:
                self.repeats = True
            else:
                self.exports[key] = export
        return len(self.exports) - before

    @property
    def ids(self) -> set[str]:
        """The Ids listed in this pass."""
        return set(self.exports)

    @property
    def settled(self) -> bool:
        """Say whether the pages held still: one Total, met, and no repeat.

        A Total that changed means exports came or went while paging; a repeat,
        that the pages shifted; a count off the Total, maybe an export missed.
        """
        return not self.repeats and self.totals == {str(len(self.exports))}


class OktopostClient:
    """Calls the Oktopost API with Basic auth, throttled, retrying what may pass.

    `sleep`, `clock` (monotonic, for the throttle), `wall_clock` (for Retry-After
    dates) and `jitter` are injectable so that tests never wait. `call_log` is the
    file the throttle shares with the account's other processes. A base_url with a
    user name or password in it is refused; an `http://` one is warned of, since
    the key would travel unencrypted.
    """

    def __init__(
        self,
        base_url: str,
        auth: AuthBase,
        *,
        timeout: float,
        max_retries: int,
        rate_limit_wait: float,
        logger: logging.Logger,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        jitter: Callable[[float, float], float] = random.uniform,
        call_log: Path | None = None,
    ) -> None:
        problem = base_url_problem(base_url)
        if problem is not None:
            raise OktopostError(problem)
        parts = urlsplit(base_url)
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            logger.warning(
                "The base_url setting is http://, so the API key travels "
                "unencrypted; use https://"
            )
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.rate_limit_wait = rate_limit_wait
        self.logger = logger
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.jitter = jitter
        self.clock = clock
        self.throttle = CallThrottle(call_log, clock=clock, sleep=sleep)
        self.session = CredentialFreeSession()
        self.session.auth = auth
        self.session.headers["Accept"] = "application/json"

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], logger: logging.Logger, **timing: Any
    ) -> OktopostClient:
        """Build the client from the tap's settings; `timing` is for tests."""
        base_url = config.get("base_url", US_BASE_URL)
        return cls(
            base_url,
            HTTPBasicAuth(config["account_id"], config["api_key"]),
            **retry_settings(config),
            logger=logger,
            call_log=call_log_path(str(base_url), str(config["account_id"])),
            **timing,
        )

    def get(self, path: str, what: str, params: dict[str, Any] | None = None) -> Any:
        """GET an API path and return its body, once `Result` says it succeeded."""
        return retrying(
            lambda: self._get_once(path, what, params),
            max_retries=self.max_retries,
            rate_limit_wait=self.rate_limit_wait,
            logger=self.logger,
            sleep=self.sleep,
            jitter=self.jitter,
            now=self.wall_clock,
        )

    def _get_once(self, path: str, what: str, params: dict[str, Any] | None) -> Any:
        """One call, bounded as a whole by `timeout`, its answer by its size.

        The `RequestDeadline` ends a call whose status line or headers trickle in;
        `read_answer` checks the body's pace itself. Errors are raised outside
        `except` blocks: a log formatter that prints the exception chain must find
        no requests exception quoting a URL there.
        """
        self.throttle.wait_for_turn()
        deadline = self.clock() + self.timeout
        failure: OktopostError | None = None
        with RequestDeadline(self.timeout) as watch:
            try:
                with self.session.get(
                    f"{self.base_url}{path}",
                    params=params,
                    timeout=self.timeout,
                    stream=True,
                ) as response:
                    status = response.status_code
                    retry_after = response.headers.get("Retry-After")
                    content = read_answer(
                        response, what=what, deadline=deadline, clock=self.clock
                    )
            except requests.RequestException as error:
                failure = (
                    too_slow(what)
                    if watch.ended(error)
                    else request_error(error, what, target=self.base_url)
                )
        if failure is not None:
            raise failure
        return self._body(status, content, retry_after, path=path, what=what)

    def _body(
        self,
        status: int,
        content: bytes,
        retry_after: str | None,
        *,
        path: str,
        what: str,
    ) -> Any:
        """Give an answer's JSON body once `Result` says the call succeeded."""
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        if status >= 400:
            raise api_status_error(
                status,
                path=path,
                what=what,
                oktopost_said=oktopost_message(body),
                retry_after=retry_after_seconds(retry_after, self.wall_clock),
            )
        if not isinstance(body, dict):
            snippet = content[:200].decode("utf-8", "replace").strip()
            message = (
                f"{what}: Oktopost answered HTTP {status} with no JSON: {snippet!r}"
            )
            raise OktopostError(message)
        if body.get("Result") is not True:
            message = (
                f"{what}: Oktopost answered Result false: {oktopost_message(body)}"
            )
            raise OktopostError(message)
        return body

    def check_credentials(self) -> dict[str, Any]:
        """Make the cheapest authenticated call."""
        user: dict[str, Any] = self.get("/me", "Checking credentials (GET /me)")["User"]
        return user

    def list_exports(self) -> ExportListing:
        """List every export once, by Id, however Oktopost's paging shifts.

        The page size is undocumented and `Total` may be off, so a pass pages until
        an empty page, one shorter than the longest before, or one past `Total`
        with nothing new (see `_past_total`). Exports created or deleted while
        paging shift the pages: entries repeat, or one slips past unseen. So a
        pass that did not settle (see `_ListingPass.settled`) is followed by
        another, until one settles, or lists the same exports as the one before
        with one Total on all its pages, for MAX_PASSES passes. Paging that never
        ends (STALLED_PAGES pages in a row with nothing new, MAX_PAGES pages in
        all, or MAX_PASSES passes) stops there: the listing then holds every
        export seen and says why in `incomplete`.
        """
        passes: list[_ListingPass] = []
        pages = 0
        while True:
            listed = self._list_pass(len(passes), MAX_PAGES - pages)
            pages += listed.pages
            if (
                listed.incomplete is None
                and len(listed.totals) == 1
                and (listed.settled or (passes and passes[-1].ids == listed.ids))
            ):
                return ExportListing(list(listed.exports.values()))
            passes.append(listed)
            incomplete = listed.incomplete
            if incomplete is None and len(passes) == MAX_PASSES:
                incomplete = (
                    f"the exports listed changed on each of {MAX_PASSES} passes "
                    "over the pages, so the list may miss some"
                )
            if incomplete is not None:
                seen: dict[str, dict[str, Any]] = {}
                for each in passes:
                    for key, export in each.exports.items():
                        seen.setdefault(key, export)
                return ExportListing(list(seen.values()), incomplete)

    def _list_pass(self, number: int, pages_left: int) -> _ListingPass:
        """Page through the exports once, from page 0."""
        listed = _ListingPass()
        longest = 0
        stalled = 0
        for page in range(pages_left):
            again = f", pass {number + 1}" if number else ""
            what = f"Listing exports (page {page}{again})"
            body = self.get("/bi-export", what, {"_page": page})
            exports = body.get("Exports") or []
            if not isinstance(exports, list) or not all(
                isinstance(export, dict) for export in exports
            ):
                message = f"{what}: Oktopost's 'Exports' is not a list of exports"
                raise OktopostError(message)
            listed.pages += 1
            total = body.get("Total")
            listed.totals.add(printable(repr(total)[:40]))
            if _past_total(listed, exports, total):
                return listed
            new = listed.add(exports)
            if not exports or len(exports) < longest:
                return listed
            longest = len(exports)
            stalled = 0 if new else stalled + 1
            if stalled == STALLED_PAGES:
                listed.incomplete = (
                    f"pages {page - STALLED_PAGES + 1} to {page} listed no export "
                    "unseen before and the pages do not end: Oktopost's paging "
                    "goes round in circles"
                )
                return listed
        listed.incomplete = (
            f"no end after {MAX_PAGES} pages ({len(listed.exports)} exports this "
            f"pass, Total {', '.join(sorted(listed.totals))}); stopped before the "
            "key's daily calls are spent"
        )
        return listed

    def get_export(self, export_id: str) -> dict[str, Any]:
        """Describe one export, with a fresh link to its last run's file."""
        body = self.get(
            f"/bi-export/{quote(export_id, safe='')}", f"Export {export_id}"
        )
        export = body.get("Export")
        if not isinstance(export, dict):
            message = f"Export {export_id}: Oktopost's answer has no 'Export' object"
            raise OktopostError(message)
        return export

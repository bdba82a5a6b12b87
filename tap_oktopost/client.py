"""HTTP policy for the Oktopost API and its object storage: errors, waits, retries.

One place decides which answers are retried (408, 429, 5xx; on storage also 403, an
expired link), how long to wait (Retry-After, the rate-limit lockout, or jittered
backoff) and what advice a fatal answer carries, so the API client and the downloads
agree.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import json
import logging
import random
import re
import socket
import threading
import time
from collections import deque
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
"""A longer Retry-After is a server fault or a date typo; the tap waits this long."""
CALLS_PER_MINUTE = 60
MAX_API_ANSWER_BYTES = 8 * 1024 * 1024
"""Oktopost's largest answer, a page of exports, is kilobytes; past this (counted
after any gzip is inflated) an answer is refused before it can fill memory."""
MAX_PAGES = 1000
"""Pages of exports read at most: at 60 calls a minute, 17 minutes of the 20,000
calls a day Oktopost allows a key, and far more exports than an account has."""
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


def retry_wait(
    error: RetriableOktopostError,
    attempt: int,
    *,
    rate_limit_wait: float,
    jitter: Callable[[float, float], float] = random.uniform,
) -> tuple[float, str]:
    """Choose the wait before retry number `attempt + 1`, and say why for the log.

    Retry-After wins, capped at MAX_RETRY_AFTER_SECONDS; a 429 without it waits
    `rate_limit_wait`; anything else backs off exponentially with full jitter.
    """
    if error.retry_after is not None:
        if error.retry_after > MAX_RETRY_AFTER_SECONDS:
            reason = (
                f" (its Retry-After header asks {_format_seconds(error.retry_after)} s,"
                f" capped at {_format_seconds(MAX_RETRY_AFTER_SECONDS)} s)"
            )
            return MAX_RETRY_AFTER_SECONDS, reason
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
) -> T:
    """Run `call`, retrying RetriableOktopostError up to `max_retries` times.

    A hand-written loop rather than `backoff`: the wait needs the exception (for
    Retry-After), the sleep must be injectable for tests, and the two packages that
    install a `backoff` module hand the exception to handlers differently.
    """
    attempt = 0
    while True:
        try:
            return call()
        except RetriableOktopostError as error:
            if attempt >= max_retries:
                raise
            wait, reason = retry_wait(
                error, attempt, rate_limit_wait=rate_limit_wait, jitter=jitter
            )
            attempt += 1
            logger.warning(
                "%s: retry %d of %d in %s s%s",
                error,
                attempt,
                max_retries,
                _format_seconds(wait),
                reason,
            )
            sleep(wait)


class CallThrottle:
    """Keeps this process under Oktopost's 60 calls a minute.

    The limit is per key and this count is per process: Meltano runs discovery and
    the sync as two processes, and other tools may share the key, so a 429 can
    still come, and `retrying` waits it out.
    """

    def __init__(
        self,
        calls: int = CALLS_PER_MINUTE,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.window = window
        self.clock = clock
        self.sleep = sleep
        self.calls: deque[float] = deque(maxlen=calls)

    def wait_for_turn(self) -> None:
        """Sleep until one more call keeps the window under its limit."""
        if len(self.calls) == self.calls.maxlen:
            wait = self.calls[0] + self.window - self.clock()
            if wait > 0:
                self.sleep(wait)
        self.calls.append(self.clock())


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


class OktopostClient:
    """Calls the Oktopost API with Basic auth, throttled, retrying what may pass.

    `sleep`, `clock` (monotonic, for the throttle), `wall_clock` (for Retry-After
    dates) and `jitter` are injectable so that tests never wait. A base_url with a
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
        self.throttle = CallThrottle(clock=clock, sleep=sleep)
        self.session = CredentialFreeSession()
        self.session.auth = auth
        self.session.headers["Accept"] = "application/json"

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], logger: logging.Logger, **timing: Any
    ) -> OktopostClient:
        """Build the client from the tap's settings; `timing` is for tests."""
        return cls(
            config.get("base_url", US_BASE_URL),
            HTTPBasicAuth(config["account_id"], config["api_key"]),
            **retry_settings(config),
            logger=logger,
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

    def list_exports(self, status: str | None = None) -> Iterator[dict[str, Any]]:
        """Yield every export on every page.

        The page size is undocumented, so paging stops at `Total` or at an empty page,
        whichever comes first. A page with no export unseen before (the same page
        again, say) ends the listing with an error, as do MAX_PAGES pages: a server
        that never reaches either end would otherwise spend the key's daily calls.
        """
        seen = 0
        total: object = None
        known: set[str] = set()
        pages: dict[tuple[str, ...], int] = {}
        for page in range(MAX_PAGES):
            params: dict[str, Any] = {"_page": page}
            if status:
                params["status"] = status
            what = f"Listing exports (page {page})"
            body = self.get("/bi-export", what, params)
            exports = body.get("Exports") or []
            if not isinstance(exports, list) or not all(
                isinstance(export, dict) for export in exports
            ):
                message = f"{what}: Oktopost's 'Exports' is not a list of exports"
                raise OktopostError(message)
            ids = tuple(str(export.get("Id")) for export in exports)
            if ids and ids in pages:
                message = (
                    f"{what}: the same exports as page {pages[ids]}; Oktopost's "
                    "paging goes round in circles, so the listing stops"
                )
                raise OktopostError(message)
            if ids and known.issuperset(ids):
                message = (
                    f"{what}: no export that an earlier page did not list; "
                    "Oktopost's paging makes no progress, so the listing stops"
                )
                raise OktopostError(message)
            pages[ids] = page
            known.update(ids)
            total = body.get("Total")
            yield from exports
            seen += len(exports)
            if not exports or (isinstance(total, int) and seen >= total):
                return
        message = (
            f"Listing exports: no end after {MAX_PAGES} pages ({seen} exports, "
            f"Total {printable(repr(total)[:40])}); stopping before the key's "
            "daily calls are spent"
        )
        raise OktopostError(message)

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

"""Sessions and the request deadline: connections a watcher can end, bounded answers.

`RequestDeadline` ends a request that is not done in time, whatever it waits for;
the sessions carry no stray credentials, and answers are read piece by piece.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from tap_oktopost.api.errors import (
    OktopostError,
    RetriableOktopostError,
    hide_link_queries,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

US_BASE_URL = "https://api.oktopost.com/v2"
EU_BASE_URL = "https://eu-api.oktopost.com/v2"
DEFAULT_TIMEOUT_SECONDS = 300.0
MAX_API_ANSWER_BYTES = 8 * 1024 * 1024
"""Oktopost's largest answer, a page of exports, is kilobytes; past this (counted
after any gzip is inflated) an answer is refused before it can fill memory."""
PIECE_BYTES = 64 * 1024
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
        # more, fires first, even when a loaded machine is slow to connect.
        self.seconds = seconds + min(1.0, max(0.25, seconds / 20))
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


def is_loopback(host: str | None) -> bool:
    """Say whether a host is this machine, where plain HTTP is allowed."""
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
        hide_link_queries()
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

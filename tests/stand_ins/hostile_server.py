"""A deliberately hostile Oktopost: answers that are huge, slow, looping or lying.

Unlike `tests.stand_ins.oktopost_stand_in`, which models the real API with failure
knobs, this server answers each path with whatever a test hands it (`route`), so a test
can send a 2 GiB download, one byte every half second, or the same page forever. It
listens on 127.0.0.1 only and keeps nothing in memory but what a test gives it.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

Responder = Callable[["HostileHandler"], None]
SIGNATURE = "X-Amz-Signature=hostile-signature-0123456789"


@dataclass
class Seen:
    """One request the server received."""

    path: str
    headers: dict[str, str]


class HostileHandler(BaseHTTPRequestHandler):
    """Answers a path with its test's responder; 404 for any other path."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def do_GET(self) -> None:
        hostile = self.server.hostile
        hostile.record(Seen(self.path, dict(self.headers.items())))
        responder = hostile.responder(self.path)
        try:
            if responder is None:
                self.send_body(b'{"Result": false}', status=HTTPStatus.NOT_FOUND)
            else:
                responder(self)
        except OSError:
            self.close_connection = True  # the tap hung up, as it should

    def send_head(
        self,
        status: int = HTTPStatus.OK,
        headers: dict[str, str] | None = None,
        length: int | None = None,
    ) -> None:
        """Send the status and headers; without a length the body ends at close."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if length is None:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def send_body(
        self,
        body: bytes,
        status: int = HTTPStatus.OK,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_head(status, headers, len(body))
        self.write(body)

    def write(self, data: bytes) -> None:
        self.server.hostile.count(len(data))
        self.wfile.write(data)
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hostile: Hostile) -> None:
        self.hostile = hostile
        super().__init__(("127.0.0.1", 0), HostileHandler)

    def server_bind(self) -> None:
        """Bind without a name lookup."""
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: hostile answers end in broken connections by design."""


class Hostile:
    """One hostile server; `route` says how each path is answered."""

    account_id = "hostile-account"
    api_key = "hostile-api-key-0123456789"

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.routes: dict[str, Responder] = {}
        self.seen: list[Seen] = []
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None

    def __enter__(self) -> Hostile:
        self._server = _Server(self)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(
                self._server.socket, server_side=True
            )
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        ).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def origin(self) -> str:
        assert self._server is not None
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://127.0.0.1:{self._server.server_port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v2"

    def route(self, path: str, responder: Responder) -> None:
        """Answer `path` (without its query string) with `responder`."""
        self.routes[path] = responder

    def responder(self, path: str) -> Responder | None:
        return self.routes.get(urlsplit(path).path)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def count(self, sent: int) -> None:
        with self._lock:
            self.bytes_sent += sent

    def hits(self, path: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.seen if urlsplit(seen.path).path == path]

    def link(self, path: str) -> str:
        """A signed link to `path` on this server."""
        return f"{self.origin}{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&{SIGNATURE}"

    def serve_export(
        self,
        export_id: str,
        file: Responder,
        *,
        link_origin: str | None = None,
        destination: dict[str, Any] | None = None,
    ) -> None:
        """An active export whose last run's file `file` answers."""
        item = {
            "Id": export_id,
            "Type": "Posts",
            "Status": "active",
            "DestinationType": "email",
            "Destination": destination or {"Email": "bi@acme.com"},
        }
        path = f"/files/{export_id}.zip"
        link = self.link(path)
        if link_origin is not None:
            link = link.replace(self.origin, link_origin)
        detail = {**item, "LastRunDate": "2026-11-27 10:00:00", "LastRunFile": link}
        self.route(f"/v2/bi-export/{export_id}", json_answer(detail, key="Export"))
        self.route("/v2/bi-export", json_answer([item], key="Exports", Total=1))
        self.route(path, file)


def json_answer(
    payload: Any,
    key: str | None = None,
    status: int = HTTPStatus.OK,
    **fields: Any,
) -> Responder:
    """An Oktopost answer: `{"Result": true, key: payload, **fields}`."""
    body = {"Result": status < 400, **fields}
    if key is not None:
        body[key] = payload
    data = json.dumps(body).encode()

    def respond(handler: HostileHandler) -> None:
        handler.send_body(data, status, {"Content-Type": "application/json"})

    return respond


def file_answer(data: bytes) -> Responder:
    def respond(handler: HostileHandler) -> None:
        handler.send_body(data, headers={"Content-Type": "application/zip"})

    return respond


def endless(
    piece: bytes,
    times: int,
    *,
    headers: dict[str, str] | None = None,
    declared: int | None = None,
    first: bytes = b"",
) -> Responder:
    """`first`, then `piece` `times` times: a huge answer that costs no memory here."""

    def respond(handler: HostileHandler) -> None:
        handler.send_head(headers=headers, length=declared)
        handler.write(first)
        for _ in range(times):
            handler.write(piece)

    return respond


def trickle(
    body: bytes, every: float, headers: dict[str, str] | None = None
) -> Responder:
    """Announce `body`, then send it one byte every `every` seconds."""

    def respond(handler: HostileHandler) -> None:
        handler.send_head(headers=headers, length=len(body))
        for index in range(len(body)):
            handler.write(body[index : index + 1])
            time.sleep(every)

    return respond


def trickle_head(
    body: bytes, every: float, headers: dict[str, str] | None = None
) -> Responder:
    """Send the status line and headers one byte every `every` seconds, then `body`.

    Each byte comes well within a socket timeout: only a deadline on the whole
    request ends the wait.
    """

    def respond(handler: HostileHandler) -> None:
        head = [
            f"{handler.protocol_version} 200 OK",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
            f"Content-Length: {len(body)}",
            "X-Padding: " + "x" * 200,
        ]
        handler.close_connection = True
        for byte in "\r\n".join([*head, "", ""]).encode():
            handler.write(bytes([byte]))
            time.sleep(every)
        handler.write(body)

    return respond


def redirect(location: str) -> Responder:
    def respond(handler: HostileHandler) -> None:
        handler.send_body(b"", HTTPStatus.FOUND, {"Location": location})

    return respond


def pages(page: Callable[[int], list[dict[str, Any]]], total: int) -> Responder:
    """A listing whose page number `n` holds `page(n)`, claiming `total` exports."""

    def respond(handler: HostileHandler) -> None:
        query = dict(
            part.partition("=")[::2] for part in urlsplit(handler.path).query.split("&")
        )
        number = int(query.get("_page", "0"))
        json_answer(page(number), key="Exports", Total=total)(handler)

    return respond


@contextlib.contextmanager
def hostile_pair() -> Iterator[tuple[Hostile, Hostile]]:
    """Two hostile servers: the API and another host (a second port)."""
    with Hostile() as first, Hostile() as second:
        yield first, second

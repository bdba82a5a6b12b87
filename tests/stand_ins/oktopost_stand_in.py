"""A local stand-in for the Oktopost BI Export API and its object storage.

No live Oktopost API is reachable from the tests, so this models the behaviour
Oktopost documents (and its official client shows): Basic-auth JSON API under ``/v2``,
paged export listing, export details carrying a pre-signed link, and an S3-like
storage server on a second port that serves the last run's ZIP archive. Knobs
(``fail_next``, ``truncate_next_download``, ``honour_range``, ...) let tests
provoke the failure modes the tap must survive.

Run ``python -m tests.stand_ins.oktopost_stand_in --port-file PATH`` for a demo server.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import csv
import hashlib
import hmac
import http.client
import io
import json
import os
import random
import secrets
import signal
import socket
import socketserver
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

API_PREFIX: Final = "/v2"
STORAGE_PREFIX: Final = "/storage/"
CHUNK_SIZE: Final = 64 * 1024
SIGNING_ALGORITHM: Final = "AWS4-HMAC-SHA256"
_ZIP_TIMESTAMP: Final = (2026, 11, 27, 10, 0, 0)


class _Missing:
    """Type of ``MISSING``: distinguishes "field absent" from JSON null."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def make_zip(members: dict[str, str | bytes]) -> bytes:
    """Build a deflated ZIP in memory; fixed timestamps keep the bytes deterministic."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            # Unix permissions, so `unzip` in a demo yields readable files.
            info.external_attr = (
                (0o40755 << 16) | 0x10 if name.endswith("/") else 0o644 << 16
            )
            data = content.encode("utf-8") if isinstance(content, str) else content
            archive.writestr(info, data)
    return buffer.getvalue()


@dataclass
class StandInExport:
    """One BI export as the API shows it, plus the file of its last run."""

    id: str  # 15 characters, starting "032"
    type: str = "Posts"
    status: str = "active"  # "active" | "inactive"
    destination_type: str = "email"
    destination: dict[str, Any] = field(
        default_factory=lambda: {
            "Email": "john.doe@acme.com",
            "FirstName": "John",
            "LastName": "Doe",
        }
    )
    frequency: str = "Every day at 10:00 AM"
    time_range: str = "Last 30 Days"
    # MISSING: absent from the detail; anything else (None, "", int, str) is sent as-is.
    last_run_date: object = MISSING
    archive: bytes | None = None  # None: the export never ran
    archive_name: str = "2026-11-27-Posts-Report.zip"
    # How a never-run export shows LastRunFile, since the real API's choice is unknown.
    last_run_file_style: str = "absent"  # "absent" | "null" | "empty"
    # Fields of the list item, and so of the detail, sent as given instead of the
    # modelled ones (MISSING drops one): e.g. {"Type": ["Posts"]}.
    list_fields: dict[str, Any] = field(default_factory=dict)
    # Detail fields sent as given instead of the modelled ones (MISSING drops one):
    # odd answers, e.g. {"LastRunFile": "ftp://x/a.zip"} or {"Type": {"a": 1}}.
    detail_fields: dict[str, Any] = field(default_factory=dict)
    # A whole detail answer sent instead of {"Result": true, "Export": detail},
    # e.g. {"Result": true} for an answer without its export.
    detail_answer: dict[str, Any] | None = None

    def list_item(self) -> dict[str, Any]:
        """The fields `GET /bi-export` returns for this export."""
        item = {
            "Id": self.id,
            "DestinationType": self.destination_type,
            "Destination": self.destination,
            "Type": self.type,
            "Frequency": self.frequency,
            "TimeRange": self.time_range,
            "Status": self.status,
        }
        return with_fields(item, self.list_fields)


def with_fields(answer: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """An answer with these fields instead of its own; MISSING drops one."""
    for name, value in fields.items():
        if value is MISSING:
            answer.pop(name, None)
        else:
            answer[name] = copy.deepcopy(value)
    return answer


@dataclass
class PagingShape:
    """How `GET /bi-export` strays from plain offset paging, as Oktopost's may.

    `total_error` is added to every Total; page n > 0 starts `overlap` entries
    (fewer than a page) before page n - 1 ended, so it repeats them; `endless`
    answers page 0 for every page, so the pages never end. `inserts` maps a page
    number to (position, export) and `deletes` to an export Id: the export is
    created or deleted just before that page is first served, shifting the pages.
    """

    total_error: int = 0
    overlap: int = 0
    endless: bool = False
    inserts: dict[int, tuple[int, StandInExport]] = field(default_factory=dict)
    deletes: dict[int, str] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    """What a test can assert about one request the stand-in received."""

    server: str  # "api" or "storage"
    method: str
    path: str  # with query string
    headers: dict[str, str]  # names in Title-Case, whatever case the client sent
    status: int


@dataclass
class _Failure:
    """A queued answer that replaces the normal one, see `OktopostStandIn.fail_next`."""

    path_prefix: str
    status: int
    times: int
    body: bytes | None
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    """HTTP server that knows its stand-in and can drop its open connections on stop."""

    daemon_threads = True

    def __init__(
        self, stand_in: OktopostStandIn, role: str, handler: type[_Handler]
    ) -> None:
        self.stand_in = stand_in
        self.role = role
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's getfqdn(): no name lookups leave the machine."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients hanging up; report real bugs as usual."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        """Cut keep-alive connections, so a stopped stand-in really stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Shared plumbing: failure injection, recording, responses with Content-Length."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm the body
    # waits for the client's delayed ACK of the headers, 40 ms a request.
    disable_nagle_algorithm = True
    server: _Server
    _error_content_type = "application/json"

    def log_message(self, format: str, *args: Any) -> None:
        """Tests and demos must not be flooded with access logs on stderr."""

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    @property
    def stand_in(self) -> OktopostStandIn:
        return self.server.stand_in

    def _handle(self) -> None:
        self._discard_request_body()
        failure = self.stand_in._take_failure(self.path)
        if failure is not None:
            body = (
                failure.body
                if failure.body is not None
                else self._error_body(failure.status)
            )
            self._reply(failure.status, body, self._error_content_type, failure.headers)
        elif self.command not in ("GET", "HEAD"):
            self._reply_error(HTTPStatus.METHOD_NOT_ALLOWED)
        else:
            self._route()

    def _discard_request_body(self) -> None:
        """Read any request body so the keep-alive connection stays in sync."""
        length = self.headers.get("Content-Length", "0")
        if length.isdigit():
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _route(self) -> None:
        raise NotImplementedError

    def _error_body(self, status: int, message: str | None = None) -> bytes:
        raise NotImplementedError

    def _reply_error(self, status: int, message: str | None = None) -> None:
        self._reply(status, self._error_body(status, message), self._error_content_type)

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        *,
        archive: bool = False,
        truncate: bool = False,
    ) -> None:
        """Record, then answer; recording first means a test never races the log."""
        self.stand_in._record(
            RecordedRequest(
                server=self.server.role,
                method=self.command,
                path=self.path,
                headers={name.title(): value for name, value in self.headers.items()},
                status=status,
            )
        )
        headers = headers or {}
        self.send_response(status)
        # A test's fail_next headers may bring their own Content-Type.
        if not any(name.lower() == "content-type" for name in headers):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        limit = len(body) // 2 if truncate else len(body)
        for start in range(0, limit, CHUNK_SIZE):
            chunk = body[start : min(start + CHUNK_SIZE, limit)]
            # Count before writing: the client may read the last byte before a
            # post-write increment runs, and tests check the counter right after.
            if archive:
                self.stand_in._count_served(len(chunk))
            try:
                self.wfile.write(chunk)
            except OSError:
                if archive:
                    self.stand_in._count_served(-len(chunk))
                self.close_connection = True
                return
        if truncate:
            self.close_connection = True


class _ApiHandler(_Handler):
    """The JSON API under /v2."""

    def _error_body(self, status: int, message: str | None = None) -> bytes:
        return _json(
            {
                "Result": False,
                "Errors": {"API": {"Error": message or _phrase(status)}},
            }
        )

    def _route(self) -> None:
        if self.stand_in._over_rate_limit():
            self._reply_error(HTTPStatus.TOO_MANY_REQUESTS, "Rate limit exceeded")
            return
        if not self._authorised():
            self._reply(
                HTTPStatus.UNAUTHORIZED,
                self._error_body(HTTPStatus.UNAUTHORIZED, "Invalid credentials"),
                "application/json",
                {"WWW-Authenticate": 'Basic realm="Oktopost API"'},
            )
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        parts = (
            url.path.removeprefix(API_PREFIX + "/").split("/")
            if url.path.startswith(API_PREFIX + "/")
            else []
        )
        if parts == ["me"]:
            self._reply_json(
                {
                    "Result": True,
                    "User": {
                        "Id": "00A000000000001",
                        "Name": "Demo User",
                        "Email": "demo@acme.com",
                    },
                }
            )
        elif parts == ["bi-export"]:
            self._list_exports(query)
        elif len(parts) == 2 and parts[0] == "bi-export" and parts[1]:
            self._export_detail(unquote(parts[1]))
        else:
            self._reply_error(HTTPStatus.NOT_FOUND, "Not found")

    def _authorised(self) -> bool:
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = (
                base64.b64decode(encoded.strip(), validate=True)
                .decode("utf-8")
                .partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return False
        # Evaluate both comparisons so timing does not reveal which part was wrong.
        user_ok = hmac.compare_digest(user.encode(), self.stand_in.account_id.encode())
        password_ok = hmac.compare_digest(
            password.encode(), self.stand_in.api_key.encode()
        )
        return bool(sep) and user_ok and password_ok

    def _reply_json(self, payload: dict[str, Any], status: int = HTTPStatus.OK) -> None:
        self._reply(status, _json(payload), "application/json")

    def _reply_param_error(self, name: str) -> None:
        self._reply_json(
            {"Result": False, "Errors": {"Param": {name: "Invalid value"}}},
            HTTPStatus.BAD_REQUEST,
        )

    def _list_exports(self, query: dict[str, list[str]]) -> None:
        raw_page = query.get("_page", ["0"])[-1]
        try:
            page = int(raw_page)
        except ValueError:
            page = -1
        if page < 0:
            self._reply_param_error("_page")
            return
        status_filter = query.get("status", [None])[-1]
        if status_filter not in (None, "active", "inactive"):
            self._reply_param_error("status")
            return
        page_size = max(self.stand_in.page_size, 1)
        shape = self.stand_in.paging
        self.stand_in._change_before_page(page)
        items = self.stand_in._list_items(status_filter)
        start = 0 if shape.endless else page * (page_size - shape.overlap)
        page_items = items[start : start + page_size]
        total = len(items) + shape.total_error
        self._reply_json({"Result": True, "Exports": page_items, "Total": total})

    def _export_detail(self, export_id: str) -> None:
        detail = self.stand_in._detail(export_id)
        answer = self.stand_in._detail_answer(export_id)
        if detail is None:
            self._reply_error(HTTPStatus.NOT_FOUND, "Export not found")
        else:
            self._reply_json(
                {"Result": True, "Export": detail} if answer is None else answer
            )


class _StorageHandler(_Handler):
    """The S3-like object storage behind the pre-signed LastRunFile links."""

    _error_content_type = "application/xml"

    _S3_CODES: Final[dict[int, str]] = {
        HTTPStatus.BAD_REQUEST: "InvalidRequest",
        HTTPStatus.FORBIDDEN: "AccessDenied",
        HTTPStatus.NOT_FOUND: "NoSuchKey",
        HTTPStatus.METHOD_NOT_ALLOWED: "MethodNotAllowed",
        HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE: "InvalidRange",
        HTTPStatus.INTERNAL_SERVER_ERROR: "InternalError",
        HTTPStatus.SERVICE_UNAVAILABLE: "SlowDown",
    }

    def _error_body(
        self, status: int, message: str | None = None, code: str | None = None
    ) -> bytes:
        code = code or self._S3_CODES.get(status, _phrase(status).replace(" ", ""))
        text = message or _phrase(status)
        return f"<Error><Code>{code}</Code><Message>{text}</Message></Error>".encode()

    def _route(self) -> None:
        if "Authorization" in self.headers:
            body = self._error_body(
                HTTPStatus.BAD_REQUEST,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                "parameter, Signature query string parameter or the Authorization "
                "header should be specified",
                code="InvalidArgument",
            )
            self._reply(HTTPStatus.BAD_REQUEST, body, self._error_content_type)
            return
        url = urlsplit(self.path)
        if not self.stand_in._signature_valid(url.path, parse_qs(url.query)):
            self._reply_error(
                HTTPStatus.FORBIDDEN, "Request has expired or signature does not match"
            )
            return
        export_id = unquote(url.path.removeprefix(STORAGE_PREFIX).partition("/")[0])
        data = self.stand_in._archive(export_id)
        if data is None:
            self._reply_error(HTTPStatus.NOT_FOUND, "The specified key does not exist.")
            return
        self._send_archive(data)

    def _send_archive(self, data: bytes) -> None:
        total = len(data)
        headers = {"Accept-Ranges": "bytes"}
        etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
        if self.stand_in.etag_style == "strong":
            headers["ETag"] = etag
        elif self.stand_in.etag_style == "weak":
            headers["ETag"] = f"W/{etag}"
        status: int = HTTPStatus.OK
        if self.stand_in.etag_style != "none" and self.headers.get("If-None-Match") in {
            etag,
            f"W/{etag}",
        }:
            self._reply(HTTPStatus.NOT_MODIFIED, b"", "application/zip", headers)
            return
        requested = self.headers.get("Range")
        style = self.stand_in.range_style
        if_range = self.headers.get("If-Range")
        if (if_range is not None and if_range != etag) or (
            style == "first-only" and not (requested or "").startswith("bytes=0-")
        ):
            requested = None  # another version, or a cache serving whole files
        if requested is not None and self.stand_in.honour_range:
            try:
                if style == "refuse":
                    raise _UnsatisfiableRange
                byte_range = _parse_range(
                    requested, total, strict=style.startswith("strict")
                )
            except _UnsatisfiableRange:
                if style != "strict-bare":
                    headers["Content-Range"] = f"bytes */{total}"
                status = HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE
                body = self._error_body(
                    status, "The requested range is not satisfiable"
                )
                self._reply(status, body, self._error_content_type, headers)
                return
            if byte_range is not None:
                first, last = byte_range
                if first > 0 and self._fail_block():
                    return
                headers["Content-Range"] = f"bytes {first}-{last}/{total}"
                status = HTTPStatus.PARTIAL_CONTENT
                data = data[first : last + 1]
        truncate = self.command == "GET" and self.stand_in._take_truncation()
        self._reply(
            status, data, "application/zip", headers, archive=True, truncate=truncate
        )

    def _fail_block(self) -> bool:
        """Answer a block request as `fail_next_block` asked; False to serve it."""
        failure = self.stand_in._take_block_failure()
        if failure is False:
            return False
        if failure is None:  # a connection reset: no answer at all
            self.stand_in._record(
                RecordedRequest(
                    "storage",
                    self.command,
                    self.path,
                    {name.title(): value for name, value in self.headers.items()},
                    0,
                )
            )
            self.close_connection = True
        else:
            body = self._error_body(failure)
            headers = self.stand_in._block_failure_headers
            self._reply(failure, body, self._error_content_type, headers)
        return True


class _UnsatisfiableRange(Exception):
    """The Range header asks only for bytes past the end of the file (416)."""


def _parse_range(
    header: str, total: int, *, strict: bool = False
) -> tuple[int, int] | None:
    """Parse one `bytes=` range into (first, last), or None to ignore it.

    Malformed and multi-range headers are ignored (answered with the whole file),
    which RFC 9110 allows. `strict`, a range reaching past the end is refused too,
    as some S3-compatible stores and proxies do.
    """
    unit, _, spec = header.strip().partition("=")
    start_text, dash, end_text = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or not dash or not (start_text or end_text):
        return None
    if not all(text.isdecimal() for text in (start_text, end_text) if text):
        return None
    if not start_text:  # suffix range: the last n bytes
        suffix = int(end_text)
        if suffix == 0 or total == 0:
            raise _UnsatisfiableRange
        return max(total - suffix, 0), total - 1
    first = int(start_text)
    if end_text and int(end_text) < first:
        return None
    if first >= total or (strict and end_text and int(end_text) >= total):
        raise _UnsatisfiableRange
    return first, min(int(end_text) if end_text else total, total - 1)


def _phrase(status: int) -> str:
    """Reason phrase, tolerating odd codes a test may inject (e.g. 599)."""
    return http.client.responses.get(status, "Error")


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode("utf-8")


class OktopostStandIn:
    """Two loopback servers (API and storage) sharing one lock-protected state."""

    def __init__(
        self,
        *,
        account_id: str = "acme-account",
        api_key: str = "s3cr3t-api-key-0123456789",
        page_size: int = 25,
        honour_range: bool = True,
        link_lifetime_seconds: float = 3600.0,
    ) -> None:
        # Plain attributes, read on every request, so tests may change them mid-run.
        self.account_id = account_id
        self.api_key = api_key
        self.page_size = page_size
        self.honour_range = honour_range
        self.range_style = "s3"
        """How Range is answered: "s3" (416 only past the end), "strict" (416 to a
        range reaching past the end, with `bytes */N`), "strict-bare" (the same
        without the size), "refuse" (416 with `bytes */N` to every Range),
        "first-only" (a cache: Range honoured from byte 0 only, else the whole file
        with 200)."""
        self.etag_style = "strong"
        """The ETag sent with the file: "strong", "weak" (`W/"..."`), or "none"."""
        self.link_lifetime_seconds = link_lifetime_seconds
        self.paging = PagingShape()
        self.requests: list[RecordedRequest] = []
        self.rate_limited = 0
        """API calls answered 429 by `rate_limit`'s count."""
        self._rate_limit: tuple[int, float] | None = None
        self._api_arrivals: list[float] = []
        self._lock = threading.Lock()
        self._exports: dict[str, StandInExport] = {}
        self._failures: list[_Failure] = []
        self._truncations = 0
        self._block_failures: list[int | None] = []
        self._replacements: dict[str, list[tuple[int, bytes]]] = {}
        self._block_failure_headers: dict[str, str] = {}
        self._bytes_served = 0
        self._secret = secrets.token_bytes(32)
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> OktopostStandIn:
        if self._servers:
            raise RuntimeError("stand-in already started")
        self._servers = [
            _Server(self, "api", _ApiHandler),
            _Server(self, "storage", _StorageHandler),
        ]
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"oktopost-stand-in-{server.role}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
            server.drop_connections()
        for thread in self._threads:
            thread.join()
        self._servers = []
        self._threads = []

    def __enter__(self) -> OktopostStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _port(self, role: str) -> int:
        for server in self._servers:
            if server.role == role:
                return server.server_port
        raise RuntimeError("stand-in not started")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port('api')}{API_PREFIX}"

    # -- test controls -------------------------------------------------------

    def add_export(self, export: StandInExport) -> StandInExport:
        with self._lock:
            self._exports[export.id] = export
        return export

    def set_run(
        self,
        export_id: str,
        archive: bytes | None,
        last_run_date: object,
        archive_name: str | None = None,
    ) -> None:
        """Model a new run: only the newest file can be downloaded, the old is gone."""
        with self._lock:
            export = self._exports[export_id]
            export.archive = archive
            export.last_run_date = last_run_date
            if archive_name is not None:
                export.archive_name = archive_name

    def remove_export(self, export_id: str) -> None:
        with self._lock:
            del self._exports[export_id]

    def fail_next(
        self,
        path_prefix: str,
        status: int,
        times: int = 1,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests under `path_prefix` with `status` instead.

        The default body is an Oktopost error envelope on the API server and an
        S3-style XML error on the storage server.
        """
        with self._lock:
            self._failures.append(
                _Failure(path_prefix, status, times, body, dict(headers or {}))
            )

    def stop_failing(self, path_prefix: str) -> None:
        """Forget the failures still due under `path_prefix`: the fault is gone."""
        with self._lock:
            self._failures = [
                failure
                for failure in self._failures
                if failure.path_prefix != path_prefix
            ]

    def truncate_next_download(self, times: int = 1) -> None:
        """Make the next downloads promise the full length but hang up halfway."""
        with self._lock:
            self._truncations += times

    def fail_next_block(
        self,
        status: int | None,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Fail the next `times` Range requests for blocks past the file's head.

        `status` is the HTTP status to answer with, with `headers`; None drops
        the connection without an answer, as a reset does.
        """
        with self._lock:
            self._block_failures.extend([status] * times)
            self._block_failure_headers = dict(headers or {})

    def rate_limit(self, calls: int, window: float) -> None:
        """Answer 429 to an API call past `calls` in any `window` seconds.

        Oktopost's 60 calls in any sliding minute; refused calls count too.
        """
        with self._lock:
            self._rate_limit = (calls, window)
            self._api_arrivals = []

    def api_calls(self) -> list[RecordedRequest]:
        """The API requests answered since start or the last `reset_log`."""
        with self._lock:
            return [request for request in self.requests if request.server == "api"]

    def replace_after(self, export_id: str, requests: int, archive: bytes) -> None:
        """Replace an export's file in place after `requests` more storage requests
        for it: same link, same name, new bytes (a new ETag). Calls queue up, each
        counting from the replacement before it."""
        with self._lock:
            self._replacements.setdefault(export_id, []).append((requests, archive))

    def reset_log(self) -> None:
        """Forget requests and the served-byte count, to look at one phase alone."""
        with self._lock:
            self.requests.clear()
            self._bytes_served = 0

    def downloads(self) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.server == "storage"]

    @property
    def bytes_served(self) -> int:
        """Archive body bytes the storage wrote since start or the last `reset_log`."""
        with self._lock:
            return self._bytes_served

    # -- used by the handlers ------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _count_served(self, count: int) -> None:
        with self._lock:
            self._bytes_served += count

    def _over_rate_limit(self) -> bool:
        with self._lock:
            if self._rate_limit is None:
                return False
            calls, window = self._rate_limit
            now = time.monotonic()
            self._api_arrivals = [t for t in self._api_arrivals if t > now - window]
            self._api_arrivals.append(now)
            if len(self._api_arrivals) <= calls:
                return False
            self.rate_limited += 1
            return True

    def _change_before_page(self, page: int) -> None:
        """Create or delete the export `paging` asks for before this page, once."""
        with self._lock:
            insert = self.paging.inserts.pop(page, None)
            deleted = self.paging.deletes.pop(page, None)
            if insert is not None:
                position, export = insert
                entries = list(self._exports.items())
                entries.insert(position, (export.id, export))
                self._exports = dict(entries)
            if deleted is not None:
                self._exports.pop(deleted, None)

    def _take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if path.startswith(failure.path_prefix):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    return failure
        return None

    def _take_block_failure(self) -> int | bool | None:
        """The status of the next block failure, None for a reset, False for none."""
        with self._lock:
            return self._block_failures.pop(0) if self._block_failures else False

    def _take_truncation(self) -> bool:
        with self._lock:
            if self._truncations <= 0:
                return False
            self._truncations -= 1
            return True

    def _list_items(self, status: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e.list_item()
                for e in self._exports.values()
                if status is None or e.status == status
            ]

    def _detail(self, export_id: str) -> dict[str, Any] | None:
        with self._lock:
            export = self._exports.get(export_id)
            if export is None:
                return None
            detail = export.list_item()
            if export.last_run_date is not MISSING:
                detail["LastRunDate"] = export.last_run_date
            if export.archive is not None:
                detail["LastRunFile"] = self._signed_link(export)
            elif export.last_run_file_style == "null":
                detail["LastRunFile"] = None
            elif export.last_run_file_style == "empty":
                detail["LastRunFile"] = ""
            return with_fields(detail, export.detail_fields)

    def _detail_answer(self, export_id: str) -> dict[str, Any] | None:
        with self._lock:
            export = self._exports.get(export_id)
            return None if export is None else copy.deepcopy(export.detail_answer)

    def _archive(self, export_id: str) -> bytes | None:
        with self._lock:
            export = self._exports.get(export_id)
            if export is None:
                return None
            queue = self._replacements.get(export_id)
            if queue:
                left, archive = queue[0]
                if left <= 0:
                    export.archive = archive
                    queue.pop(0)
                else:
                    queue[0] = (left - 1, archive)
            return export.archive

    def _signature(self, path: str, date: str, expires: str) -> str:
        message = f"{unquote(path)}\n{date}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _signed_link(self, export: StandInExport) -> str:
        """A fresh S3-style pre-signed URL on the storage port (another "host")."""
        path = (
            f"{STORAGE_PREFIX}{quote(export.id, safe='')}/{quote(export.archive_name)}"
        )
        date = f"{time.time():.3f}"
        expires = f"{self.link_lifetime_seconds:g}"
        query = urlencode(
            {
                "X-Amz-Algorithm": SIGNING_ALGORITHM,
                "X-Amz-Date": date,
                "X-Amz-Expires": expires,
                "X-Amz-Signature": self._signature(path, date, expires),
            }
        )
        return f"http://127.0.0.1:{self._port('storage')}{path}?{query}"

    def _signature_valid(self, path: str, query: dict[str, list[str]]) -> bool:
        def param(name: str) -> str:
            return query.get(name, [""])[-1]

        date, expires, signature = (
            param("X-Amz-Date"),
            param("X-Amz-Expires"),
            param("X-Amz-Signature"),
        )
        if param("X-Amz-Algorithm") != SIGNING_ALGORITHM or not signature:
            return False
        if not hmac.compare_digest(signature, self._signature(path, date, expires)):
            return False
        try:
            return time.time() <= float(date) + float(expires)
        except ValueError:
            return False


# -- demo data ---------------------------------------------------------------


def _csv_text(rows: list[list[object]], line_ending: str = "\n") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=line_ending).writerows(rows)
    return buffer.getvalue()


def _posts_csv(rng: random.Random) -> tuple[str, list[str]]:
    """The main Posts CSV (BOM, CRLF, awkward text) and its post ids."""
    networks = ["LinkedIn", "Twitter", "Facebook", "Instagram"]
    campaigns = ["Q4 Launch", "Webinar: Data, Done Right", "Holiday Push", ""]
    messages = [
        "Join our webinar, register today!",
        'Our CEO says: "Automation wins"',
        'Top 5 tips, tricks, and "hacks" for B2B',
        "Café talk: Grüße from the Berlin team",
        "New whitepaper out now",
        "Line one of the post\nLine two, after a newline",
    ]
    rows: list[list[object]] = [
        [
            "Post ID",
            "Network",
            "Message",
            "Clicks",
            "Engagement Rate",
            "Is Boosted",
            "Created At",
            "Campaign",
        ]
    ]
    post_ids = []
    for index in range(40):
        post_id = f"{rng.randint(1, 99999):07d}"
        post_ids.append(post_id)
        created = datetime(
            2026, 11, rng.randint(1, 26), rng.randint(0, 23), rng.choice([0, 5, 30, 45])
        )
        rows.append(
            [
                post_id,
                rng.choice(networks),
                messages[index % len(messages)],
                rng.randint(0, 500),
                f"{rng.uniform(0, 0.25):.4f}",
                rng.choice(["true", "false"]),
                created.strftime("%Y-%m-%d %H:%M:%S"),
                rng.choice(campaigns),
            ]
        )
    return "\ufeff" + _csv_text(rows, "\r\n"), post_ids


def demo_exports() -> list[StandInExport]:
    """Realistic, deterministic exports covering the cases a sync must handle."""
    rng = random.Random(20261127)  # noqa: S311 - reproducible data, not secrets
    posts_csv, post_ids = _posts_csv(rng)
    stats_rows: list[list[object]] = [
        ["Post ID", "Date", "Impressions", "Likes", "Shares", "Comments"]
    ]
    stats_rows += [
        [
            post_id,
            f"2026-11-{rng.randint(20, 27)}",
            rng.randint(100, 20000),
            rng.randint(0, 300),
            rng.randint(0, 40),
            rng.randint(0, 25),
        ]
        for post_id in post_ids[:20]
    ]
    campaign_rows: list[list[object]] = [
        ["Campaign ID", "Name", "Start Date", "Posts", "Clicks", "Status"]
    ]
    campaign_rows += [
        [
            f"001{index:012d}",
            f"Campaign {index + 1}",
            f"2026-{rng.randint(9, 11):02d}-{rng.randint(1, 28):02d}",
            rng.randint(1, 60),
            rng.randint(0, 5000),
            rng.choice(["active", "paused", "completed"]),
        ]
        for index in range(10)
    ]
    campaign_rows[1][2] = "2026-11-01"
    advocate_rows: list[list[object]] = [["Advocate ID", "Name", "Note"]]
    advocate_rows += [
        [f"00B{index:012d}", f"Advocate {index}", "INACTIVE-EXPORT-DATA-MUST-NOT-LOAD"]
        for index in range(5)
    ]
    return [
        StandInExport(
            id="032000000000101",
            type="Posts",
            last_run_date="2026-11-27 10:00:00",
            archive=make_zip(
                {
                    "2026-11-27-Posts.csv": posts_csv,
                    "reports/Post Stats.csv": _csv_text(stats_rows),
                }
            ),
            archive_name="2026-11-27-Posts-Report.zip",
        ),
        StandInExport(
            id="032000000000102",
            type="Campaigns",
            frequency="Every Monday at 10:00 AM",
            time_range="Last 7 Days",
            last_run_date=int(
                datetime(2026, 11, 23, 10, tzinfo=timezone.utc).timestamp()
            ),
            archive=make_zip({"Campaigns.csv": _csv_text(campaign_rows)}),
            archive_name="2026-11-23-Campaigns-Report.zip",
        ),
        StandInExport(
            id="032000000000103",
            type="Advocates",
            status="inactive",
            destination_type="sftp",
            destination={
                "Host": "sftp.acme.com",
                "Port": 22,
                "Path": "/exports",
                "Username": "acme-bi",
                "Password": "sftp-Pa55word!",
            },
            last_run_date="2026-11-26 10:00:00",
            archive=make_zip({"Advocates.csv": _csv_text(advocate_rows)}),
            archive_name="2026-11-26-Advocates-Report.zip",
        ),
        StandInExport(
            id="032000000000104",
            type="Conversions",
            last_run_date=None,
            last_run_file_style="null",
        ),
    ]


TYPES_CHANGE_AFTER_ROWS = 2000
"""Rows of `drifting_exports`' file before its columns change type: the sample a
discovery reading by Range takes."""


def drifting_exports(late_rows: int = 300) -> list[StandInExport]:
    """An export whose columns change type after row 2,000, one pair of types each.

    `click_count` integer -> text (an `N/A`), `rate` number -> text, `day` date ->
    text, `is_paid` boolean -> text, `score` integer -> number; `note` is text.
    """
    rng = random.Random(20261201)  # noqa: S311 - reproducible data, not secrets
    rows: list[list[object]] = [
        ["Link ID", "Click Count", "Rate", "Day", "Is Paid", "Score", "Note"]
    ]
    for number in range(1, TYPES_CHANGE_AFTER_ROWS + late_rows + 1):
        late = number > TYPES_CHANGE_AFTER_ROWS and number % 50 == 1
        rows.append(
            [
                f"L{number:06d}",
                "N/A" if late else rng.randint(0, 900),
                "-" if late else f"{rng.uniform(0, 1):.3f}",
                "unknown" if late else f"2026-11-{rng.randint(1, 30):02d}",
                "maybe" if late else rng.choice(["true", "false"]),
                f"{rng.randint(0, 99)}.5" if late else rng.randint(0, 99),
                rng.choice(["new", "repeat visitor", ""]),
            ]
        )
    return [
        StandInExport(
            id="032000000000201",
            type="Links",
            last_run_date="2026-12-01 10:00:00",
            archive=make_zip({"2026-12-01-Clicks.csv": _csv_text(rows)}),
            archive_name="2026-12-01-Clicks-Report.zip",
        )
    ]


HEADER_ONLY_TABLE = "header_only"


def header_only_exports() -> list[StandInExport]:
    """An export whose archive holds a header-only CSV, beside one with rows."""
    return [
        StandInExport(
            id="032000000000301",
            type="Campaigns",
            last_run_date="2026-12-02 10:00:00",
            archive=make_zip(
                {
                    "Header Only.csv": "Campaign ID,Name,Clicks\r\n",
                    "Campaign Names.csv": _csv_text(
                        [["Campaign ID", "Name"], ["0010", "Spring"], ["0011", "Fall"]]
                    ),
                }
            ),
            archive_name="2026-12-02-Campaigns-Report.zip",
        )
    ]


DATASETS: dict[str, Callable[[], list[StandInExport]]] = {
    "demo": demo_exports,
    "drifting": drifting_exports,
    "header_only": header_only_exports,
}
"""Every dataset the stand-in serves, by name: the standard tests run over each."""


def main(argv: list[str] | None = None) -> None:
    """Serve demo data until SIGTERM/SIGINT; the port file says where to connect."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--port-file",
        type=Path,
        required=True,
        help="where to write base_url and credentials",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with OktopostStandIn() as stand_in:
        for export in demo_exports():
            stand_in.add_export(export)
        info = {
            "base_url": stand_in.base_url,
            "account_id": stand_in.account_id,
            "api_key": stand_in.api_key,
        }
        # Write then rename, so a poller never reads half a file.
        partial = args.port_file.with_name(args.port_file.name + ".partial")
        partial.write_text(json.dumps(info) + "\n", encoding="utf-8")
        os.replace(partial, args.port_file)
        stop.wait()


if __name__ == "__main__":
    main()

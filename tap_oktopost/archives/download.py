"""Downloading export archives through their signed links, and checking what they hold.

A signed link is a credential: it is sent with no `Authorization` header (object
stores refuse a second auth method), never logged with its query string, and never
stored. Archives are streamed to a private temporary folder, under names of the tap's
own, and read from there, so an export of any size costs disk, not memory; members are
read in place, never extracted (see `tap_oktopost.archive`).
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import re
import shutil
import tempfile
import time
import unicodedata
import weakref
import zlib
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import requests

from tap_oktopost.api.errors import (
    ExpiredLinkError,
    OktopostError,
    RetriableOktopostError,
    printable,
    redact,
)
from tap_oktopost.api.retry import retry_after_seconds, retrying, storage_status_error
from tap_oktopost.api.transport import RequestDeadline, body_pieces, storage_session
from tap_oktopost.archives.archive import (
    QUIET_REASONS,
    ZIP_ERRORS,
    ByteReader,
    ExportArchive,
    NotCsvExportError,
    UnloadableExportError,
    single_file_table,
)
from tap_oktopost.archives.cache import ArchiveCache, RunKey
from tap_oktopost.tables.csv_data import decoding_of, scan_of_json, scan_to_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_oktopost.api.exports import ExportRun
    from tap_oktopost.archives.cache import CachedFile
    from tap_oktopost.tables.csv_data import MemberScan

CHUNK_BYTES = 1024 * 1024
"""A download that brings less than this in `timeout` seconds has stalled."""
DEFAULT_MAX_ARCHIVE_BYTES = 5 * 1024**3
"""The largest archive downloaded (max_archive_bytes): Oktopost's run files are
megabytes; this bounds the disk a broken or hostile storage can fill."""
DEFAULT_MAX_DISK_BYTES = 4 * DEFAULT_MAX_ARCHIVE_BYTES
"""The most archive bytes held on disk at once (max_disk_bytes): a sync holds every
archive with rows due until its export is loaded, to type each column once."""
_HEAD_RANGE = re.compile(r"bytes\s+0-([0-9]+)/([0-9]+)")
_RANGE = re.compile(r"bytes\s+([0-9]+)-([0-9]+)/([0-9]+)")
_UNSATISFIED = re.compile(r"bytes\s+\*/([0-9]+)")
_FILE_KINDS = {b"%PDF": "a PDF report", b"\xd0\xcf\x11\xe0": "an Office report"}
_ARCHIVE_KINDS = {
    b"BZh": "a bzip2 file",
    b"\xfd7zXZ\x00": "an xz file",
    b"\x28\xb5\x2f\xfd": "a Zstandard file",
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive",
    b"Rar!\x1a\x07": "a RAR archive",
}
"""Archives and compressed files of kinds the tap does not read, by first bytes."""
_GZIP = b"\x1f\x8b"
_SNIFF_BYTES = 16 * 1024
"""The text judged for being CSV: the first lines of a file."""
_TEXT_CONTROLS = frozenset("\t\r\n\x00")
_BAD_LINK = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
    requests.exceptions.InvalidHeader,
)
T = TypeVar("T")
__all__ = [
    "ArchiveReadError",
    "ArchiveStore",
    "ExportArchive",
    "FileChangedError",
    "NotCsvExportError",
    "RangeReadError",
    "RemoteFile",
    "RetriableDownloadError",
    "UnloadableExportError",
]


class RetriableDownloadError(RetriableOktopostError):
    """A download that may succeed with a fresh link: cut off, expired, corrupt."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{message} (retried with a fresh link)", retry_after)


class FileChangedError(RetriableDownloadError):
    """A file replaced in storage while read in pieces: read it again from scratch.

    `whole` when the storage stopped honouring Range (a cache answering with the
    whole file): read it again with one whole download.
    """

    def __init__(self, message: str, *, whole: bool = False) -> None:
        super().__init__(message)
        self.whole = whole


class _FileChanged(Exception):
    """A Range answer from another version of the file: never retried alone."""

    def __init__(self, message: str, *, whole: bool = False) -> None:
        super().__init__(message)
        self.whole = whole


@dataclass(frozen=True)
class _Head:
    """The first answer to a Range read: the file's head, size and version."""

    head: bytes
    size: int
    etag: str | None


@dataclass(frozen=True)
class _Saved:
    """A whole file written to disk, and its version."""

    size: int
    etag: str | None


class _NotModified:
    """A 304 to `If-None-Match`: the cached copy is the storage's file."""


class _OverWholeLimit(Exception):
    """A whole download past the size discovery reads whole: read it by Range."""


@dataclass(frozen=True)
class _Refused:
    """A 416 to the first Range request, and what to ask instead."""

    next_ask: str | None

    @classmethod
    def of(cls, got: requests.Response) -> _Refused:
        """Ask for the size a 416 gives (RFC 9110: `bytes */N`), else the whole.

        A size that the refused range fitted in says the storage refuses Range
        itself: the whole file is asked for then too.
        """
        found = _UNSATISFIED.fullmatch(got.headers.get("Content-Range", "").strip())
        size = int(found.group(1)) if found else 0
        if not 0 < size < RemoteFile.HEAD_BYTES:
            return cls(None)
        return cls(f"bytes=0-{size - 1}")


def _opaque(etag: str) -> str:
    """Give an ETag as compared weakly: a cache may mark the same version weak."""
    return etag.removeprefix("W/")


def link_file_name(link: str) -> str:
    """Give the file name at the end of a link's path, without its query."""
    try:
        path = urlsplit(link).path
    except ValueError:
        return ""
    return unquote(path.rpartition("/")[2])


def not_csv_reason(head: bytes, name: str) -> str | None:
    """Say what a file that is no ZIP archive is, judged by its head; None for CSV.

    A gzip file is judged by the text it inflates to. A file named `.csv` (or
    `.csv.gz`) is CSV when it is text; another name needs a header line of CSV.
    """
    named = name.lower().removesuffix(".gz").endswith(".csv")
    if head.startswith(_GZIP):
        try:
            text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
                head, _SNIFF_BYTES
            )
        except zlib.error:
            return "gzip data that cannot be inflated"
        reason = _not_csv_text(text, named=named)
        return None if reason is None else f"gzip data holding {reason}"
    return _not_csv_text(head[:_SNIFF_BYTES], named=named)


def _markup(data: bytes) -> str | None:
    """Say whether a file is a web page, another document of tags, or JSON."""
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:512].lower()
    if start.startswith(b"<!doctype html") or b"<html" in start:
        return "an HTML page (a proxy's block page or a login page?)"
    if start.startswith(b"<"):
        return "an XML or HTML document"
    if start.startswith((b"{", b"[")):
        return "a JSON document"
    return None


def _not_csv_text(data: bytes, *, named: bool) -> str | None:
    if not data:
        return "an empty file"
    if markup := _markup(data):
        return markup
    text = data.decode(decoding_of(data, whole=False).encoding, errors="replace")
    controls = sum(
        1
        for character in text
        if character not in _TEXT_CONTROLS and unicodedata.category(character) == "Cc"
    )
    if controls > len(text) // 100:
        return f"a file of unknown kind (starting {data[:4].hex(' ')})"
    if named:
        return None
    header = next(csv.reader(io.StringIO(text.lstrip("\ufeff").partition("\n")[0])))
    if len(header) < 2 or not any(cell.strip() for cell in header):
        return "text that is not CSV with a header line"
    return None


class RangeReadError(RetriableOktopostError):
    """One Range request that failed in a way that may pass: retried on its own."""


class ArchiveReadError(OktopostError):
    """Part of an archive that storage would not give, even after retries."""


def read_at_most(
    response: requests.Response,
    limit: int,
    *,
    deadline: float,
    clock: Callable[[], float],
) -> bytes | None:
    """Read a body of `limit` bytes at most; None if it is longer or too slow.

    A Range answer is small: one that goes on, or trickles past its deadline, is
    cut off rather than read into memory or waited for.
    """
    body = bytearray()
    for piece in body_pieces(response):
        body += piece
        if len(body) > limit or clock() > deadline:
            return None
    return bytes(body)


def broken_off(where: str, error: requests.RequestException) -> str:
    """Say how a download broke off, never quoting `error`: it holds the link."""
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return f"{where}: the connection closed before the whole file came"
    return f"{where}: {type(error).__name__}"


class RemoteFile(ByteReader):
    """A file on object storage, read through HTTP Range requests.

    `zipfile` reads an archive's central directory from its end and each member
    from its offset, so discovery reads the few blocks it needs, not the archive.
    The first request brings a larger head: the first member's start, where the
    sample rows are. A read gives every byte asked for, fetching the blocks it spans
    (missing neighbours in one request), as `zipfile` takes a short read for a
    truncated archive. Each request is retried on its own, and a refused (expired)
    link is replaced by a fresh one before the next try.

    Every block comes from the version of the file the head came from: it is asked
    for with `If-Range: <ETag>` when the head had a strong ETag, and its answer's
    `Content-Range` total and ETag must be the head's. Anything else (a 200 with a
    whole file, a new size, a new ETag) raises `FileChangedError`: the file was
    replaced, and what was read of it so far must be dropped.
    """

    HEAD_BYTES = 64 * 1024
    BLOCK_BYTES = 16 * 1024
    CACHE_BYTES = 8 * 1024 * 1024
    """Blocks kept for rereads: headers are read twice, the central directory once."""

    def __init__(
        self,
        session: requests.Session,
        link: str,
        size: int,
        *,
        head: bytes,
        etag: str | None = None,
        timeout: float,
        where: str,
        retry: Callable[[Callable[[], bytes]], bytes],
        relink: Callable[[], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.clock = clock
        self.link = link
        self.size = size
        self.head = head
        self.etag = etag
        self.timeout = timeout
        self.where = where
        self.retry = retry
        self.relink = relink
        self.position = 0
        self.blocks: dict[int, bytes] = {}
        self._link_refused = False

    def seekable(self) -> bool:
        """Say it can seek, as `zipfile` needs."""
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the read position; nothing is fetched until a read."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}
        self.position = max(0, base[whence] + offset)
        return self.position

    def tell(self) -> int:
        """Give the read position."""
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        """Read `size` bytes, or to the end of the file: fewer only at its end."""
        left = self.size - self.position
        size = left if size is None or size < 0 else min(size, left)
        if size <= 0:
            return b""
        start, end = self.position, self.position + size
        pieces = [self.head[start:end]] if start < len(self.head) else []
        from_blocks = max(start, len(self.head))
        if from_blocks < end:
            first, last = from_blocks // self.BLOCK_BYTES, (end - 1) // self.BLOCK_BYTES
            self._load(first, last)
            for index in range(first, last + 1):
                offset = index * self.BLOCK_BYTES
                block = self.blocks[index]
                pieces.append(block[max(from_blocks - offset, 0) : end - offset])
            self._trim_cache()
        self.position = end
        return b"".join(pieces)

    def _load(self, first: int, last: int) -> None:
        """Fetch the missing blocks from `first` to `last`, a run of them at a time."""
        index = first
        while index <= last:
            if index in self.blocks:
                index += 1
                continue
            run_end = index
            while run_end < last and run_end + 1 not in self.blocks:
                run_end += 1
            self._fetch(index, run_end)
            index = run_end + 1

    def _fetch(self, first: int, last: int) -> None:
        start = first * self.BLOCK_BYTES
        end = min((last + 1) * self.BLOCK_BYTES, self.size)
        failure: OktopostError | None = None
        try:
            data = self.retry(lambda: self._get(start, end - 1))
        except RetriableOktopostError as error:
            failure = ArchiveReadError(f"{error}; still failing after retries")
        except _FileChanged as changed:
            message = f"{self.where}: the file changed while being read ({changed})"
            failure = FileChangedError(message, whole=changed.whole)
        if failure is not None:
            raise failure  # out of the handler, so no chained error is printed
        for index in range(first, last + 1):
            offset = index * self.BLOCK_BYTES - start
            self.blocks[index] = data[offset : offset + self.BLOCK_BYTES]

    def _get(self, first: int, last: int) -> bytes:
        """One Range request for bytes `first` to `last`, both included.

        The whole request, headers and answer included, must end within `timeout`,
        and the answer may not be longer than asked.
        """
        if self._link_refused:
            self.link = self.relink()
            self._link_refused = False
        asked = f"bytes {first}-{last}"
        length = last - first + 1
        deadline = self.clock() + self.timeout
        failure: RangeReadError | None = None
        data: bytes | None = None
        headers = {"Range": f"bytes={first}-{last}"}
        if self.etag and not self.etag.startswith("W/"):  # If-Range takes strong ones
            headers["If-Range"] = self.etag
        with RequestDeadline(self.timeout) as watch:
            try:
                with self.session.get(
                    self.link,
                    headers=headers,
                    timeout=self.timeout,
                    stream=True,
                ) as got:
                    status = got.status_code
                    retry_after = got.headers.get("Retry-After")
                    if status in {HTTPStatus.OK, HTTPStatus.PARTIAL_CONTENT}:
                        self._check_version(got, first, last)
                    if status == HTTPStatus.PARTIAL_CONTENT:
                        data = read_at_most(
                            got, length, deadline=deadline, clock=self.clock
                        )
            except requests.RequestException as error:
                said = (
                    "the answer did not come whole within the request_timeout setting"
                    if watch.ended(error)
                    else type(error).__name__
                )
                failure = RangeReadError(f"{self.where}, {asked}: {said}")
        if failure is not None:
            raise failure
        if status == HTTPStatus.PARTIAL_CONTENT and data is not None:
            if len(data) == length:
                return data
            message = f"{self.where}, {asked}: HTTP {status} with {len(data)} bytes"
            raise RangeReadError(message)
        if status == HTTPStatus.PARTIAL_CONTENT:
            message = (
                f"{self.where}, {asked}: an answer longer than asked, or slower than "
                "the request_timeout setting"
            )
            raise RangeReadError(message)
        refused = storage_status_error(
            status, f"{self.where}, {asked}", retry_after_seconds(retry_after)
        )
        self._link_refused = isinstance(refused, ExpiredLinkError)
        raise refused

    def _check_version(self, got: requests.Response, first: int, last: int) -> None:
        """Raise `_FileChanged` unless the answer is of the head's file."""
        etag = got.headers.get("ETag")
        if self.etag and etag and _opaque(etag) != _opaque(self.etag):
            raise _FileChanged("a new ETag")
        if got.status_code == HTTPStatus.OK:  # the same file, Range no longer honoured
            raise _FileChanged("a whole file came for a Range asked", whole=True)
        found = _RANGE.fullmatch(got.headers.get("Content-Range", "").strip())
        if found is not None and int(found.group(3)) != self.size:
            raise _FileChanged(f"{found.group(3)} bytes where there were {self.size}")
        if found is None or (int(found.group(1)), int(found.group(2))) != (first, last):
            message = f"{self.where}, bytes {first}-{last}: a Range answer for others"
            raise RangeReadError(message)

    def _trim_cache(self) -> None:
        while len(self.blocks) * self.BLOCK_BYTES > self.CACHE_BYTES:
            del self.blocks[next(iter(self.blocks))]


class ArchiveStore:
    """Downloads each export run's archive once per process and hands it out.

    Discovery and the sync share one store, so a run downloaded to read its headers is
    not downloaded again to read its rows. Whatever goes wrong, `archive` raises an
    `OktopostError` naming the export, with no chained cause quoting a signed link.

    Every download is bounded: it stops at `max_archive_bytes` (not retried, so a
    file that large is never written twice), or where the archives held with it
    would pass `max_disk_bytes` (that export fails, the others held still load),
    fails when less than CHUNK_BYTES come in `timeout` seconds, and leaves no file
    behind when it fails. `discard` frees an archive's disk as soon as its export is
    loaded.
    """

    def __init__(
        self,
        refresh_run: Callable[[str], ExportRun],
        *,
        timeout: float,
        max_retries: int,
        rate_limit_wait: float,
        max_uncompressed_bytes: int,
        logger: logging.Logger,
        max_archive_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
        max_disk_bytes: int = DEFAULT_MAX_DISK_BYTES,
        cache: ArchiveCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.refresh_run = refresh_run
        self.max_archive_bytes = max_archive_bytes
        self.max_disk_bytes = max_disk_bytes
        self.cache = cache
        self.clock = clock
        self.timeout = timeout
        self.max_retries = max_retries
        self.rate_limit_wait = rate_limit_wait
        self.max_uncompressed_bytes = max_uncompressed_bytes
        self.logger = logger
        self.sleep = sleep
        self.session = storage_session()
        self._folder: Path | None = None
        self._file_numbers = itertools.count(1)
        self._archives: dict[str, ExportArchive] = {}
        self._refused: dict[str, tuple[str | None, UnloadableExportError]] = {}
        """Runs whose file this process found it cannot load, and why."""

    def archive(
        self, run: ExportRun, *, headers_only: bool = False, whole_up_to: int = 0
    ) -> ExportArchive:
        """Give the run's archive, downloading it unless this process already did.

        With `headers_only` (discovery), a file of `whole_up_to` bytes at most is
        downloaded whole, and a larger one read remotely when the storage honours
        Range; a whole file is kept for the sync. The caller deletes a remote
        archive when done with it. A file that changed while read remotely is read
        again from its start, with one whole download when the storage stopped
        honouring Range. A whole file with an ETag goes to the cache, if any, and
        comes from it while the storage's ETag is the same.
        """
        held = self._archives.get(run.export_id)
        if held is not None and held.run.run_at == run.run_at:
            return held
        refused = self._refused.get(run.export_id)
        if refused is not None and refused[0] == run.run_at:
            raise refused[1]  # too large or a bomb: no second download to find out
        self.discard(run.export_id)
        current = run
        ranged = headers_only

        def attempt() -> ExportArchive:
            nonlocal current, ranged
            try:
                return self._download(current, ranged=ranged, whole_up_to=whole_up_to)
            except RetriableDownloadError as error:
                failure = error
            if isinstance(failure, FileChangedError) and failure.whole:
                ranged = False
            current = self._fresh_link(run)  # outside the handler: no chained error
            raise failure

        try:
            archive = self._retrying(attempt)
        except UnloadableExportError as error:
            self._refused[run.export_id] = (run.run_at, error)
            raise
        try:
            self._log_skipped(archive)
            archive.check_limits(self.max_uncompressed_bytes)
            if not archive.tables:
                message = (
                    f"Export {run.export_id} ({run.export_type}): its last run's "
                    "archive holds no CSV file"
                )
                raise NotCsvExportError(message)
        except OktopostError as error:
            archive.delete()
            if isinstance(error, UnloadableExportError):
                self._refused[run.export_id] = (run.run_at, error)
            raise
        if archive.path is not None:
            self._archives[run.export_id] = archive
        return archive

    def held(self, export_id: str) -> ExportArchive | None:
        """Give the export's archive if this process downloaded it."""
        return self._archives.get(export_id)

    def discard(self, export_id: str) -> None:
        """Delete an export's archive once its rows are delivered."""
        archive = self._archives.pop(export_id, None)
        if archive is not None:
            archive.delete()

    def _retrying(self, call: Callable[[], T]) -> T:
        return retrying(
            call,
            max_retries=self.max_retries,
            rate_limit_wait=self.rate_limit_wait,
            logger=self.logger,
            sleep=self.sleep,
        )

    def _log_skipped(self, archive: ExportArchive) -> None:
        """Say in one line which members are not loaded, and why."""
        if not archive.skipped:
            return
        news = any(reason not in QUIET_REASONS for _, reason in archive.skipped)
        self.logger.log(
            logging.WARNING if news else logging.INFO,
            "Export %s: %d archive member(s) not loaded: %s",
            archive.run.export_id,
            len(archive.skipped),
            archive.skipped_summary(),
        )

    def _fresh_link(self, run: ExportRun) -> ExportRun:
        fresh = self.refresh_run(run.export_id)
        if fresh.run_at != run.run_at or not fresh.link:
            message = (
                f"Export {run.export_id}: a new run ({fresh.run_at}) replaced the run "
                f"being loaded ({run.run_at}); the next sync loads it"
            )
            raise OktopostError(message)
        return fresh

    def _download(
        self, run: ExportRun, *, ranged: bool, whole_up_to: int = 0
    ) -> ExportArchive:
        """Download the run's file; `ranged`, ask for its first block only.

        A cached copy is asked for with its ETag: a 304 makes it the file. With
        `ranged`, a file of `whole_up_to` bytes at most is downloaded whole in
        one request, and a larger one's download stops for Range reads. A
        storage refusing the first Range (416, as some do past the end of a small
        file) is asked for the size its `Content-Range` gives, and refusing that
        too, for the whole file without Range.
        """
        if not run.link:
            message = f"Export {run.export_id} has no file to download"
            raise OktopostError(message)
        where = f"Export {run.export_id}: downloading {redact(run.link)}"
        # A name of the store's own: API data never names a file.
        path = self._folder_path() / f"run-{next(self._file_numbers)}.zip"
        failure: OktopostError | None = None
        try:
            got, cached = self._from_cache_or_whole(
                run, path, where, ranged, whole_up_to
            )
            if isinstance(got, _NotModified) and cached is not None:
                self._check_size(run, path.stat().st_size)
                self.logger.info(
                    "Export %s: the archive of run %s comes from the cache (the "
                    "storage's ETag is the cached one's)",
                    run.export_id,
                    run.run_at,
                )
                archive = self._open(run, path)
                archive.cache_digest = cached.sha256
                archive.scans = self._stored_scans(cached.scans)
                return archive
            first = f"bytes=0-{RemoteFile.HEAD_BYTES - 1}" if ranged else None
            if got is None:
                got = self._get_file(run, first, path, where)
            ask = first
            while isinstance(got, _Refused):  # the size it gives, then the whole
                ask = got.next_ask if ask == first else None
                got = self._get_file(run, ask, path, where)
            if isinstance(got, _Head):
                return self._open_remote(run, got, path)
        except OSError as error:
            message = f"{where}: cannot write the temporary file ({error.strerror})"
            failure = OktopostError(message)
        except OktopostError as error:
            failure = error
        if failure is not None:
            path.unlink(missing_ok=True)
            failure.__context__ = None  # raised again below, out of any handler
            raise failure
        assert isinstance(got, _Saved)  # noqa: S101 - a 304 returned above
        self.logger.info("Export %s: downloaded %d bytes", run.export_id, got.size)
        return self._open_kept(run, path, got.etag)

    def keep_scans(self, archive: ExportArchive, scans: dict[str, MemberScan]) -> None:
        """Give discovery's whole-member scans to this process's sync and the next's.

        Kept with the archive held here, and in its cache entry's record while the
        entry holds these bytes (`cache_digest`).
        """
        archive.scans.update(scans)
        key = _run_key(archive.run)
        if self.cache is not None and key is not None and archive.cache_digest:
            stored = {
                "max_uncompressed_bytes": self.max_uncompressed_bytes,
                "members": {
                    member: scan_to_json(scan) for member, scan in archive.scans.items()
                },
            }
            self.cache.add_scans(key, archive.cache_digest, stored)

    def _stored_scans(self, stored: Any) -> dict[str, MemberScan]:
        """Read the scans a cache entry keeps, those made under this process's rules.

        Another max_uncompressed_bytes could fail a member's scan: none is reused.
        """
        if (
            not isinstance(stored, dict)
            or stored.get("max_uncompressed_bytes") != self.max_uncompressed_bytes
            or not isinstance(stored.get("members"), dict)
        ):
            return {}
        scans = {
            member: scan_of_json(scan) for member, scan in stored["members"].items()
        }
        return {member: scan for member, scan in scans.items() if scan is not None}

    def _from_cache_or_whole(
        self, run: ExportRun, path: Path, where: str, ranged: bool, whole_up_to: int
    ) -> tuple[_Saved | _NotModified | _Refused | _Head | None, CachedFile | None]:
        """Ask whether the cached copy is current, or for a file small enough whole.

        Gives the answer (None when there is neither, or the file is larger:
        download as asked) and the cached copy asked about.
        """
        limit = whole_up_to if ranged else 0
        key = _run_key(run)
        cached = (
            self.cache.fetch(key, path, lambda size: self._check_size(run, size))
            if self.cache and key
            else None
        )
        try:
            if cached is not None:
                return self._get_file(
                    run, None, path, where, if_none_match=cached.etag, whole_up_to=limit
                ), cached
            if limit > 0:
                return self._get_file(run, None, path, where, whole_up_to=limit), None
        except _OverWholeLimit:
            path.unlink(missing_ok=True)
        return None, cached

    def _open_kept(self, run: ExportRun, path: Path, etag: str | None) -> ExportArchive:
        """Open a whole file on disk; one with a version goes to the cache too.

        The cache keeps it for the next process (the sync after Meltano's
        discovery); the archive notes the cached copy's SHA-256.
        """
        archive = self._open(run, path)
        key = _run_key(run)
        if self.cache is not None and key is not None and etag:
            archive.cache_digest = self.cache.store(key, path, etag)
        return archive

    def _get_file(
        self,
        run: ExportRun,
        ask: str | None,
        path: Path,
        where: str,
        *,
        if_none_match: str | None = None,
        whole_up_to: int = 0,
    ) -> _Head | _Refused | _Saved | _NotModified:
        """One request for the file, or its head when `ask` gives a Range.

        Gives the head of a Range answer, what a 416 says to ask next, a 304 to
        `if_none_match`, or the whole file written to `path` (a storage may answer
        a Range with it); past `whole_up_to` bytes (when set), `_OverWholeLimit`.
        """
        headers = {"Range": ask} if ask else {}
        if if_none_match:
            headers["If-None-Match"] = if_none_match
        watch = RequestDeadline(self.timeout)
        failure: OktopostError | None = None
        try:
            with (
                watch,
                self.session.get(
                    str(run.link),
                    headers=headers or None,
                    stream=True,
                    timeout=self.timeout,
                ) as got,
            ):
                status = got.status_code
                if ask and status == HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE:
                    return _Refused.of(got)
                if ask and status == HTTPStatus.PARTIAL_CONTENT:
                    return self._read_head(run, got)
                if if_none_match and status == HTTPStatus.NOT_MODIFIED:
                    return _NotModified()
                size = self._save(run, got, path, where, watch, whole_up_to=whole_up_to)
                return _Saved(size, got.headers.get("ETag"))
        except _BAD_LINK as error:
            message = (
                f"Export {run.export_id}: its LastRunFile is no link the tap can "
                f"download ({type(error).__name__})"
            )
            failure = OktopostError(message)
        except requests.TooManyRedirects:
            failure = OktopostError(f"{where}: the storage redirects in a loop")
        except requests.RequestException as error:
            stalled = watch.ended(error)
            failure = RetriableDownloadError(
                self._stalled(where) if stalled else broken_off(where, error)
            )
        raise failure

    def _stalled(self, where: str, written: int | None = None) -> str:
        after = "" if written is None else f" after {written} bytes"
        return (
            f"{where}: stalled, under {CHUNK_BYTES} bytes in {self.timeout:g} s "
            f"(request_timeout){after}"
        )

    def _save(
        self,
        run: ExportRun,
        got: requests.Response,
        path: Path,
        where: str,
        watch: RequestDeadline,
        *,
        whole_up_to: int = 0,
    ) -> int:
        """Write an answer's file to `path`, bounded in size and in stalls.

        Each CHUNK_BYTES that come give the request `timeout` seconds more. Past
        `whole_up_to` bytes (when set) it stops with `_OverWholeLimit`.
        """
        if got.status_code != HTTPStatus.OK:
            retry_after = retry_after_seconds(got.headers.get("Retry-After"))
            refused = storage_status_error(got.status_code, where, retry_after)
            if isinstance(refused, RetriableOktopostError):
                raise RetriableDownloadError(str(refused), refused.retry_after)
            raise refused
        expected = got.headers.get("Content-Length")
        if expected is not None and expected.isdigit():
            self._check_size(run, int(expected))
            if 0 < whole_up_to < int(expected):
                raise _OverWholeLimit
        written = 0
        mark, mark_time = 0, self.clock()
        with path.open("wb") as file:
            for piece in body_pieces(got, CHUNK_BYTES):
                self._check_size(run, written + len(piece))
                if 0 < whole_up_to < written + len(piece):
                    raise _OverWholeLimit
                file.write(piece)
                written += len(piece)
                now = self.clock()
                if written - mark >= CHUNK_BYTES:
                    mark, mark_time = written, now
                    watch.extend()
                elif now - mark_time > self.timeout:
                    raise RetriableDownloadError(self._stalled(where, written))
        if expected is not None and expected.isdigit() and written != int(expected):
            message = f"{where}: got {written} of {expected} bytes"
            raise RetriableDownloadError(message)
        return written

    def held_bytes(self) -> int:
        """Give the disk the archives held for loading take."""
        return sum(
            archive.path.stat().st_size
            for archive in self._archives.values()
            if archive.path is not None
        )

    def _check_size(self, run: ExportRun, size: int) -> None:
        """Refuse a file before its bytes reach the disk, if too large.

        Too large is past max_archive_bytes, or taking the archives held past
        max_disk_bytes.
        """
        if size > self.max_archive_bytes:
            message = (
                f"Export {run.export_id}: its last run's file is over the "
                f"max_archive_bytes setting ({self.max_archive_bytes} bytes); the "
                "download stopped there"
            )
            raise UnloadableExportError(message)
        held = self.held_bytes()
        if held + size > self.max_disk_bytes:
            message = (
                f"Export {run.export_id}: its last run's file would take the "
                f"archives held for this sync past the max_disk_bytes setting "
                f"({self.max_disk_bytes} bytes; {held} held for other exports); the "
                "download stopped there. Its bookmark stays, so the next sync loads "
                "it; raise max_disk_bytes to load every export in one sync"
            )
            raise OktopostError(message)

    def _read_head(self, run: ExportRun, got: requests.Response) -> _Head:
        """Read a Range answer's head of the file, the file's size and version."""
        found = _HEAD_RANGE.fullmatch(got.headers.get("Content-Range", "").strip())
        head = read_at_most(
            got,
            RemoteFile.HEAD_BYTES,
            deadline=self.clock() + self.timeout,
            clock=self.clock,
        )
        if head is None or found is None or int(found.group(1)) != len(head) - 1:
            message = (
                f"Export {run.export_id}: a Range answer that is not the file's head "
                "with its total size"
            )
            raise RetriableDownloadError(message)
        return _Head(head, int(found.group(2)), got.headers.get("ETag"))

    def _open_remote(self, run: ExportRun, got: _Head, path: Path) -> ExportArchive:
        """Read the file remotely, or keep it when the first block was all of it."""
        self._check_size(run, got.size)
        if len(got.head) >= got.size:
            path.write_bytes(got.head)
            return self._open_kept(run, path, got.etag)
        link = str(run.link)
        remote = RemoteFile(
            self.session,
            link,
            got.size,
            head=got.head,
            etag=got.etag,
            timeout=self.timeout,
            where=f"Export {run.export_id}: reading {redact(link)}",
            retry=self._retrying,
            relink=lambda: str(self._fresh_link(run).link),
            clock=self.clock,
        )
        return self._open(run, remote)

    def _open(self, run: ExportRun, source: Path | RemoteFile) -> ExportArchive:
        """Open the file as what it is: a ZIP archive, or one CSV file.

        A report (PDF, Office) holds no rows by nature; anything else that is not
        CSV (a proxy's HTML page, an error document, a binary of another kind) is
        not the export's file: a failed download, tried again with a fresh link.
        """
        if isinstance(source, Path):
            with source.open("rb") as file:
                head = file.read(RemoteFile.HEAD_BYTES)
        else:
            head = source.head
        try:
            if head.startswith(b"PK"):
                return self._open_zip(run, source)
            if kind := _FILE_KINDS.get(head[:4]):
                message = (
                    f"Export {run.export_id} ({run.export_type}): its last run's file "
                    f"is {kind}, not a ZIP archive of CSV files; make it a raw-data "
                    "export"
                )
                raise NotCsvExportError(message)
            if kind := next(
                (k for magic, k in _ARCHIVE_KINDS.items() if head.startswith(magic)),
                None,
            ):
                message = (
                    f"Export {run.export_id} ({run.export_type}): its last run's file "
                    f"is {kind}, which the tap does not read: only ZIP archives, "
                    "gzip and plain CSV files"
                )
                raise OktopostError(message)
            name = link_file_name(str(run.link))
            gzipped = head.startswith(_GZIP)
            if came := not_csv_reason(head, name):
                message = (
                    f"Export {run.export_id} ({run.export_type}): its last run's file "
                    f"{printable(name)} came as {came}, not a ZIP archive or CSV file"
                )
                raise RetriableDownloadError(message)
            if single_file_table(name) is None:
                message = (
                    f"Export {run.export_id} ({run.export_type}): its last run's file "
                    f"is one CSV file, but its name ({printable(name)}) has no letter "
                    "or digit to name its table after"
                )
                raise OktopostError(message)
            return ExportArchive(
                run,
                source,
                self.max_uncompressed_bytes,
                single=name,
                gzipped=gzipped,
            )
        except OktopostError:
            if isinstance(source, Path):
                source.unlink(missing_ok=True)
            raise

    def _open_zip(self, run: ExportRun, source: Path | RemoteFile) -> ExportArchive:
        failure: RetriableDownloadError | None = None
        try:
            return ExportArchive(run, source, self.max_uncompressed_bytes)
        except ZIP_ERRORS as error:
            message = (
                f"Export {run.export_id}: corrupt ZIP archive "
                f"({type(error).__name__}: {printable(str(error))})"
            )
            failure = RetriableDownloadError(message)
        raise failure

    def _folder_path(self) -> Path:
        """Make the private folder on first use; it goes with the store."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tap-oktopost-"))
            weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        return self._folder


def _run_key(run: ExportRun) -> RunKey | None:
    """Key a run's file in the cache; None for a run that names no file."""
    if run.run_at is None or run.file_name is None:
        return None
    return RunKey(run.export_id, run.run_at, run.file_name)

"""Downloading export archives through their signed links, and checking what they hold.

A signed link is a credential: it is sent with no `Authorization` header (object
stores refuse a second auth method), never logged with its query string, and never
stored. Archives are streamed to a private temporary folder, under names of the tap's
own, and read from there, so an export of any size costs disk, not memory; members are
read in place, never extracted (see `tap_oktopost.archive`).
"""

from __future__ import annotations

import io
import itertools
import logging
import re
import shutil
import tempfile
import time
import weakref
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import requests

from tap_oktopost.archive import (
    QUIET_REASONS,
    ZIP_ERRORS,
    ExportArchive,
    NotCsvExportError,
    UnloadableExportError,
)
from tap_oktopost.client import (
    ExpiredLinkError,
    OktopostError,
    RequestDeadline,
    RetriableOktopostError,
    body_pieces,
    printable,
    retry_after_seconds,
    retrying,
    storage_session,
    storage_status_error,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_oktopost.exports import ExportRun

CHUNK_BYTES = 1024 * 1024
"""A download that brings less than this in `timeout` seconds has stalled."""
DEFAULT_MAX_ARCHIVE_BYTES = 5 * 1024**3
"""The largest archive downloaded (max_archive_bytes): Oktopost's run files are
megabytes; this bounds the disk a broken or hostile storage can fill."""
DEFAULT_MAX_DISK_BYTES = 4 * DEFAULT_MAX_ARCHIVE_BYTES
"""The most archive bytes held on disk at once (max_disk_bytes): a sync holds every
archive with rows due until its export is loaded, to type each column once."""
_HEAD_RANGE = re.compile(r"bytes\s+0-([0-9]+)/([0-9]+)")
_FILE_KINDS = {b"%PDF": "a PDF report", b"\xd0\xcf\x11\xe0": "an Office report"}
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
    "NotCsvExportError",
    "RangeReadError",
    "RemoteFile",
    "RetriableDownloadError",
    "UnloadableExportError",
    "redact",
]


def redact(link: str) -> str:
    """Show a link without its query string, where the signature lives."""
    try:
        parts = urlsplit(link)
    except ValueError:
        return "a link that is not a URL"
    host = parts.netloc.rpartition("@")[2]  # never a user name or password
    return printable(f"{parts.scheme}://{host}{parts.path}")


class _WithoutQueryStrings(logging.Filter):
    """Cut query strings out of urllib3's debug lines, which quote signed links."""

    _QUERY = re.compile(r"\?[^\s\"']*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg = self._QUERY.sub("?<redacted>", message)
            record.args = ()
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_WithoutQueryStrings())


class RetriableDownloadError(RetriableOktopostError):
    """A download that may succeed with a fresh link: cut off, expired, corrupt."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{message} (retried with a fresh link)", retry_after)


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


class RemoteFile(io.RawIOBase):
    """A file on object storage, read through HTTP Range requests.

    `zipfile` reads an archive's central directory from its end and each member
    from its offset, so discovery reads the few blocks it needs, not the archive.
    The first request brings a larger head: the first member's start, where the
    sample rows are. A read gives every byte asked for, fetching the blocks it spans
    (missing neighbours in one request), as `zipfile` takes a short read for a
    truncated archive. Each request is retried on its own, and a refused (expired)
    link is replaced by a fresh one before the next try.
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
        self.timeout = timeout
        self.where = where
        self.retry = retry
        self.relink = relink
        self.position = 0
        self.blocks: dict[int, bytes] = {}
        self._link_refused = False

    def readable(self) -> bool:
        """Say it can be read."""
        return True

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

    def readinto(self, buffer: Any) -> int:
        """Read into a buffer, as `io.RawIOBase` does."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

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
        failure: ArchiveReadError | None = None
        try:
            data = self.retry(lambda: self._get(start, end - 1))
        except RetriableOktopostError as error:
            failure = ArchiveReadError(f"{error}; still failing after retries")
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
        with RequestDeadline(self.timeout) as watch:
            try:
                with self.session.get(
                    self.link,
                    headers={"Range": f"bytes={first}-{last}"},
                    timeout=self.timeout,
                    stream=True,
                ) as got:
                    status = got.status_code
                    retry_after = got.headers.get("Retry-After")
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
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.refresh_run = refresh_run
        self.max_archive_bytes = max_archive_bytes
        self.max_disk_bytes = max_disk_bytes
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

    def archive(self, run: ExportRun, *, headers_only: bool = False) -> ExportArchive:
        """Give the run's archive, downloading it unless this process already did.

        With `headers_only` (discovery), the archive is read remotely when the
        storage honours Range; else it is downloaded whole and kept for the sync.
        The caller deletes a remote archive when done with it.
        """
        held = self._archives.get(run.export_id)
        if held is not None and held.run.run_at == run.run_at:
            return held
        self.discard(run.export_id)
        current = run

        def attempt() -> ExportArchive:
            nonlocal current
            try:
                return self._download(current, ranged=headers_only)
            except RetriableDownloadError as error:
                failure = error
            current = self._fresh_link(run)  # outside the handler: no chained error
            raise failure

        archive = self._retrying(attempt)
        try:
            self._log_skipped(archive)
            archive.check_limits(self.max_uncompressed_bytes)
            if not archive.tables:
                message = (
                    f"Export {run.export_id} ({run.export_type}): its last run's "
                    "archive holds no CSV file"
                )
                raise NotCsvExportError(message)
        except OktopostError:
            archive.delete()
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

    def _download(self, run: ExportRun, *, ranged: bool) -> ExportArchive:
        """Download the run's file; `ranged`, ask for its first block only."""
        if not run.link:
            message = f"Export {run.export_id} has no file to download"
            raise OktopostError(message)
        where = f"Export {run.export_id}: downloading {redact(run.link)}"
        head = {"Range": f"bytes=0-{RemoteFile.HEAD_BYTES - 1}"}
        # A name of the store's own: API data never names a file.
        path = self._folder_path() / f"run-{next(self._file_numbers)}.zip"
        failure: OktopostError | None = None
        watch = RequestDeadline(self.timeout)
        remote: tuple[bytes, int] | None = None
        try:
            with (
                watch,
                self.session.get(
                    run.link,
                    headers=head if ranged else None,
                    stream=True,
                    timeout=self.timeout,
                ) as got,
            ):
                if got.status_code == HTTPStatus.PARTIAL_CONTENT:
                    remote = self._read_head(run, got)
                else:
                    written = self._save(run, got, path, where, watch)
            if remote is not None:  # out of the download's deadline
                return self._open_remote(run, *remote, path)
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
        except OSError as error:
            message = f"{where}: cannot write the temporary file ({error.strerror})"
            failure = OktopostError(message)
        except OktopostError as error:
            failure = error
        if failure is not None:
            path.unlink(missing_ok=True)
            failure.__context__ = None  # raised again below, out of any handler
            raise failure
        self.logger.info("Export %s: downloaded %d bytes", run.export_id, written)
        return self._open(run, path)

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
    ) -> int:
        """Write an answer's file to `path`, bounded in size and in stalls.

        Each CHUNK_BYTES that come give the request `timeout` seconds more.
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
        written = 0
        mark, mark_time = 0, self.clock()
        with path.open("wb") as file:
            for piece in body_pieces(got, CHUNK_BYTES):
                self._check_size(run, written + len(piece))
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

    def _read_head(self, run: ExportRun, got: requests.Response) -> tuple[bytes, int]:
        """Read a Range answer's head of the file, and the file's size."""
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
        return head, int(found.group(2))

    def _open_remote(
        self, run: ExportRun, head: bytes, size: int, path: Path
    ) -> ExportArchive:
        """Read the file remotely, or keep it when the first block was all of it."""
        self._check_size(run, size)
        if len(head) >= size:
            path.write_bytes(head)
            return self._open(run, path)
        link = str(run.link)
        remote = RemoteFile(
            self.session,
            link,
            size,
            head=head,
            timeout=self.timeout,
            where=f"Export {run.export_id}: reading {redact(link)}",
            retry=self._retrying,
            relink=lambda: str(self._fresh_link(run).link),
            clock=self.clock,
        )
        return self._open(run, remote)

    def _open(self, run: ExportRun, source: Path | RemoteFile) -> ExportArchive:
        if isinstance(source, Path):
            with source.open("rb") as file:
                magic = file.read(4)
        else:
            magic = source.head[:4]
        try:
            if not magic.startswith(b"PK"):
                kind = _FILE_KINDS.get(magic, "not a ZIP archive")
                message = (
                    f"Export {run.export_id} ({run.export_type}): its last run's file "
                    f"is {kind}, not a ZIP archive of CSV files; make it a raw-data "
                    "export"
                )
                raise NotCsvExportError(message)
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
        except OktopostError:
            if isinstance(source, Path):
                source.unlink(missing_ok=True)
            raise

    def _folder_path(self) -> Path:
        """Make the private folder on first use; it goes with the store."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tap-oktopost-"))
            weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        return self._folder

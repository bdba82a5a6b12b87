"""Downloading export archives through their signed links, and checking what they hold.

A signed link is a credential: it is sent with no `Authorization` header (object
stores refuse a second auth method), never logged with its query string, and never
stored. Archives are streamed to a private temporary folder and read from there, so an
export of any size costs disk, not memory; members are read in place, never extracted.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import tempfile
import weakref
import zipfile
from http import HTTPStatus
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from tap_oktopost.client import OktopostError, RetriableOktopostError, retrying
from tap_oktopost.csv_data import table_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_oktopost.exports import ExportRun

CHUNK_BYTES = 1024 * 1024
MAX_COMPRESSION_RATIO = 1000
"""CSV deflates 5 to 50 times; a large member past this ratio is a zip bomb."""
RATIO_CHECK_BYTES = 10 * 1024 * 1024
_TOTAL_SIZE = re.compile(r"/([0-9]+)\s*$")
_FILE_KINDS = {b"%PDF": "a PDF report", b"\xd0\xcf\x11\xe0": "an Office report"}


def redact(link: str) -> str:
    """Show a link without its query string, where the signature lives."""
    parts = urlsplit(link)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


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

    def __init__(self, message: str) -> None:
        super().__init__(f"{message} (retried with a fresh link)")


class UnloadableExportError(OktopostError):
    """An export whose run the tap cannot load; the other exports still load."""


class NotCsvExportError(UnloadableExportError):
    """A run whose file holds no CSV data (a report): nothing there to load, ever."""


class RemoteFile(io.RawIOBase):
    """A file on object storage, read through HTTP Range requests a block at a time.

    `zipfile` reads an archive's central directory from its end and each member
    from its offset, so discovery reads the few blocks it needs, not the archive.
    The first request brings a larger head: the first member's start, where the
    sample rows are.
    """

    HEAD_BYTES = 64 * 1024
    BLOCK_BYTES = 16 * 1024

    def __init__(
        self,
        session: requests.Session,
        link: str,
        size: int,
        *,
        timeout: float,
        head: bytes,
    ) -> None:
        self.session = session
        self.link = link
        self.size = size
        self.timeout = timeout
        self.head = head
        self.position = 0
        self.blocks: dict[int, bytes] = {}

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
        """Read up to `size` bytes, at most to the end of the current block."""
        left = self.size - self.position
        size = left if size is None or size < 0 else min(size, left)
        if size <= 0:
            return b""
        if self.position < len(self.head):
            data = self.head[self.position : self.position + size]
        else:
            index, start = divmod(self.position, self.BLOCK_BYTES)
            data = self._block(index)[start : start + size]
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        """Read into a buffer, as `io.RawIOBase` does."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _block(self, index: int) -> bytes:
        if index not in self.blocks:
            first = index * self.BLOCK_BYTES
            last = min(first + self.BLOCK_BYTES, self.size) - 1
            where = f"reading {redact(self.link)}"
            try:
                got = self.session.get(
                    self.link,
                    headers={"Range": f"bytes={first}-{last}"},
                    timeout=self.timeout,
                )
            except requests.RequestException as error:
                message = f"{where}: {type(error).__name__}"
                raise RetriableDownloadError(message) from None
            partial = got.status_code == HTTPStatus.PARTIAL_CONTENT
            if not partial or len(got.content) != last - first + 1:
                message = f"{where}: HTTP {got.status_code} to a Range request"
                raise RetriableDownloadError(message)
            self.blocks[index] = got.content
        return self.blocks[index]


class ExportArchive:
    """A ZIP archive of one export run, read member by member.

    Downloaded to a file for the sync; for discovery, possibly a `RemoteFile`.
    """

    def __init__(self, run: ExportRun, source: Path | RemoteFile) -> None:
        self.run = run
        self.path = source if isinstance(source, Path) else None
        self.zip_file = zipfile.ZipFile(source)
        self.tables: dict[str, list[str]] = {}
        for info in self.zip_file.infolist():
            name = None if info.is_dir() else table_name(info.filename)
            if name:
                self.tables.setdefault(name, []).append(info.filename)

    def open_member(self, member: str) -> IO[bytes]:
        """Open one member for streaming reads."""
        return self.zip_file.open(member)

    def check_limits(self, max_uncompressed_bytes: int) -> None:
        """Refuse an archive that would inflate past the limits (a zip bomb)."""
        members = [
            info
            for name in self.tables.values()
            for info in map(self.zip_file.getinfo, name)
        ]
        total = sum(info.file_size for info in members)
        where = f"Export {self.run.export_id} ({self.run.export_type})"
        if total > max_uncompressed_bytes:
            message = (
                f"{where}: its CSV files hold {total} bytes uncompressed, over the "
                f"max_uncompressed_bytes setting ({max_uncompressed_bytes})"
            )
            raise UnloadableExportError(message)
        for info in members:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_CHECK_BYTES and ratio > MAX_COMPRESSION_RATIO:
                message = (
                    f"{where}: {info.filename} inflates {ratio:.0f} times, over the "
                    f"limit of {MAX_COMPRESSION_RATIO}: refusing a likely zip bomb"
                )
                raise UnloadableExportError(message)

    def delete(self) -> None:
        """Close the archive and remove its file, if it has one."""
        self.zip_file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class ArchiveStore:
    """Downloads each export run's archive once per process and hands it out.

    Discovery and the sync share one store, so a run downloaded to read its headers is
    not downloaded again to read its rows.
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
    ) -> None:
        self.refresh_run = refresh_run
        self.timeout = timeout
        self.max_retries = max_retries
        self.rate_limit_wait = rate_limit_wait
        self.max_uncompressed_bytes = max_uncompressed_bytes
        self.logger = logger
        self.session = requests.Session()
        self.session.trust_env = False  # no ~/.netrc credentials on a signed link
        # The archive's own bytes: Content-Length and Range count them, not a gzip
        # encoding of them.
        self.session.headers["Accept-Encoding"] = "identity"
        self._folder: Path | None = None
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
            except RetriableDownloadError:
                current = self._fresh_link(run)
                raise

        archive = retrying(
            attempt,
            max_retries=self.max_retries,
            rate_limit_wait=self.rate_limit_wait,
            logger=self.logger,
        )
        try:
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
        path = self._folder_path() / f"{run.export_id}.zip"
        head = {"Range": f"bytes=0-{RemoteFile.HEAD_BYTES - 1}"}
        try:
            with self.session.get(
                run.link,
                headers=head if ranged else None,
                stream=True,
                timeout=self.timeout,
            ) as got:
                if got.status_code == HTTPStatus.PARTIAL_CONTENT:
                    return self._open_remote(run, got, path)
                if got.status_code != HTTPStatus.OK:
                    self._refuse(got.status_code, where)
                expected = got.headers.get("Content-Length")
                written = 0
                with path.open("wb") as file:
                    for chunk in got.iter_content(CHUNK_BYTES):
                        file.write(chunk)
                        written += len(chunk)
        except requests.exceptions.ChunkedEncodingError:
            message = f"{where}: the connection closed before the whole file came"
            raise RetriableDownloadError(message) from None
        except requests.RequestException as error:
            message = f"{where}: {type(error).__name__}"
            raise RetriableDownloadError(message) from None
        if expected is not None and expected.isdigit() and written != int(expected):
            message = f"{where}: got {written} of {expected} bytes"
            raise RetriableDownloadError(message)
        self.logger.info("Export %s: downloaded %d bytes", run.export_id, written)
        return self._open(run, path)

    def _open_remote(
        self, run: ExportRun, got: requests.Response, path: Path
    ) -> ExportArchive:
        """Read the file remotely, or keep it when the first block was all of it."""
        found = _TOTAL_SIZE.search(got.headers.get("Content-Range", ""))
        if found is None:
            message = f"Export {run.export_id}: a Range answer without a total size"
            raise RetriableDownloadError(message)
        size, head = int(found.group(1)), got.content
        if len(head) >= size:
            path.write_bytes(head)
            return self._open(run, path)
        remote = RemoteFile(
            self.session, str(run.link), size, timeout=self.timeout, head=head
        )
        return self._open(run, remote)

    @staticmethod
    def _open(run: ExportRun, source: Path | RemoteFile) -> ExportArchive:
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
            try:
                return ExportArchive(run, source)
            except zipfile.BadZipFile as error:
                message = f"Export {run.export_id}: corrupt ZIP archive ({error})"
                raise RetriableDownloadError(message) from None
        except OktopostError:
            if isinstance(source, Path):
                source.unlink(missing_ok=True)
            raise

    @staticmethod
    def _refuse(status: int, where: str) -> None:
        message = f"{where}: HTTP {status}"
        if status in {403, 408, 429} or status >= 500:
            raise RetriableDownloadError(message)
        raise OktopostError(message)

    def _folder_path(self) -> Path:
        """Make the private folder on first use; it goes when the process ends."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tap-oktopost-"))
            weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        return self._folder

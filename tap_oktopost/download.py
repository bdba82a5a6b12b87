"""Downloading export archives through their signed links, and checking what they hold.

A signed link is a credential: it is sent with no `Authorization` header (object
stores refuse a second auth method), never logged with its query string, and never
stored. Archives are streamed to a private temporary folder and read from there, so an
export of any size costs disk, not memory; members are read in place, never extracted.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import weakref
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING
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


class ExportArchive:
    """A downloaded ZIP archive of one export run, read member by member."""

    def __init__(self, run: ExportRun, path: Path) -> None:
        self.run = run
        self.path = path
        self.zip_file = zipfile.ZipFile(path)
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
        """Close and remove the archive file."""
        self.zip_file.close()
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
        self._folder: Path | None = None
        self._archives: dict[str, ExportArchive] = {}

    def archive(self, run: ExportRun) -> ExportArchive:
        """Give the run's archive, downloading it unless this process already did."""
        held = self._archives.get(run.export_id)
        if held is not None and held.run.run_at == run.run_at:
            return held
        self.discard(run.export_id)
        current = run

        def attempt() -> ExportArchive:
            nonlocal current
            try:
                return self._download(current)
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

    def _download(self, run: ExportRun) -> ExportArchive:
        if not run.link:
            message = f"Export {run.export_id} has no file to download"
            raise OktopostError(message)
        where = f"Export {run.export_id}: downloading {redact(run.link)}"
        path = self._folder_path() / f"{run.export_id}.zip"
        try:
            with self.session.get(run.link, stream=True, timeout=self.timeout) as got:
                if got.status_code != 200:
                    self._refuse(got.status_code, where)
                expected = got.headers.get("Content-Length")
                written = 0
                with path.open("wb") as file:
                    for chunk in got.iter_content(CHUNK_BYTES):
                        file.write(chunk)
                        written += len(chunk)
        except requests.RequestException as error:
            message = f"{where}: {type(error).__name__}"
            raise RetriableDownloadError(message) from None
        if expected is not None and expected.isdigit() and written != int(expected):
            message = f"{where}: got {written} of {expected} bytes"
            raise RetriableDownloadError(message)
        self.logger.info("Export %s: downloaded %d bytes", run.export_id, written)
        return self._open(run, path)

    @staticmethod
    def _open(run: ExportRun, path: Path) -> ExportArchive:
        with path.open("rb") as file:
            magic = file.read(4)
        if not magic.startswith(b"PK"):
            kind = _FILE_KINDS.get(magic, "not a ZIP archive")
            path.unlink(missing_ok=True)
            message = (
                f"Export {run.export_id} ({run.export_type}): its last run's file is "
                f"{kind}, not a ZIP archive of CSV files; make it a raw-data export"
            )
            raise NotCsvExportError(message)
        try:
            return ExportArchive(run, path)
        except zipfile.BadZipFile as error:
            path.unlink(missing_ok=True)
            message = f"Export {run.export_id}: corrupt ZIP archive ({error})"
            raise RetriableDownloadError(message) from None

    @staticmethod
    def _refuse(status: int, where: str) -> None:
        if status in {403, 408, 429} or status >= 500:
            message = f"{where}: HTTP {status}"
            raise RetriableDownloadError(message)
        message = f"{where}: HTTP {status}"
        raise OktopostError(message)

    def _folder_path(self) -> Path:
        """Make the private folder on first use; it goes when the process ends."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tap-oktopost-"))
            weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        return self._folder

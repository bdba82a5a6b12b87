"""Downloading export archives through their signed links, and reading their members.

A signed link is a credential: it is sent with no `Authorization` header (object
stores refuse a second auth method), never logged as it is, and never stored.
Archives are streamed to a private temporary folder and read from there, so an export
of any size costs disk, not memory.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import weakref
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit

import backoff
import requests

from tap_oktopost.client import MAX_BACKOFF_SECONDS, OktopostError
from tap_oktopost.csv_data import table_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from backoff.types import Details

    from tap_oktopost.exports import ExportRun

CHUNK_BYTES = 1024 * 1024


def redact(link: str) -> str:
    """Show a link without its query string, where the signature lives."""
    parts = urlsplit(link)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class RetriableDownloadError(OktopostError):
    """A download that may succeed with a fresh link: cut off, expired, 5xx."""


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
        logger: logging.Logger,
    ) -> None:
        self.refresh_run = refresh_run
        self.timeout = timeout
        self.max_retries = max_retries
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
        path = self._download_with_retries(run)
        try:
            archive = ExportArchive(run, path)
        except zipfile.BadZipFile:
            path.unlink(missing_ok=True)
            message = (
                f"Export {run.export_id} ({run.export_type}): its last run's file is "
                "not a ZIP archive of CSV files"
            )
            raise OktopostError(message) from None
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

    def _download_with_retries(self, run: ExportRun) -> Path:
        attempt_run = run

        def attempt() -> Path:
            nonlocal attempt_run
            try:
                return self._download(attempt_run)
            except RetriableDownloadError:
                attempt_run = self._fresh_link(run)
                raise

        return backoff.on_exception(
            backoff.expo,
            RetriableDownloadError,
            max_tries=self.max_retries + 1,
            max_value=MAX_BACKOFF_SECONDS,
            jitter=backoff.full_jitter,
            on_backoff=self._log_retry,
            logger=None,
        )(attempt)()

    def _log_retry(self, details: Details) -> None:
        self.logger.warning(
            "Retrying the download in %.1f s with a fresh link: %s",
            details["wait"],
            sys.exc_info()[1],
        )

    def _fresh_link(self, run: ExportRun) -> ExportRun:
        fresh = self.refresh_run(run.export_id)
        if fresh.run_at != run.run_at or not fresh.link:
            message = (
                f"Export {run.export_id}: a new run ({fresh.run_at}) replaced the run "
                f"being loaded ({run.run_at}); the next sync will load it"
            )
            raise OktopostError(message)
        return fresh

    def _download(self, run: ExportRun) -> Path:
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
        return path

    @staticmethod
    def _refuse(status: int, where: str) -> None:
        if status == 403 or status == 429 or status >= 500:  # noqa: PLR1714
            message = f"{where}: HTTP {status} (an expired link is fetched again)"
            raise RetriableDownloadError(message)
        message = f"{where}: HTTP {status}"
        raise OktopostError(message)

    def _folder_path(self) -> Path:
        """Make the private folder on first use; it goes when the process ends."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tap-oktopost-"))
            weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        return self._folder

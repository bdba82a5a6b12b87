"""An on-disk cache of export archives, shared by the tap's processes.

Meltano runs discovery and the sync as two processes: discovery downloads an
archive to type its columns, and the sync finds it here instead of downloading it
again. An entry is keyed by export, run date and file name, and holds the file
version (ETag) the storage gave, so that the sync asks with `If-None-Match` and a
`304 Not Modified` costs no download. Only a file with an ETag is kept: without
one, nothing could tell a replaced file from the cached one.

Entries are written under a temporary name and renamed into place, and every
change is made under an exclusive `fcntl` lock, so processes sharing the folder
never see half an entry. Each entry records its size and SHA-256: one that does
not match is deleted and downloaded again, never read. A newer run of an export
replaces the entries of its older ones, and the least recently used go when the
folder would pass its bound. Folder 0700, files 0600; names are hashes: no export
data and no link ever names a file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator

DEFAULT_CACHE_BYTES = 2 * 1024**3
"""The archive_cache_bytes default: a few days of an account's run files."""
_LOCK = ".lock"
_CHUNK = 1024 * 1024


def default_cache_dir() -> Path:
    """Give the user's cache folder (XDG): not the temp folder others share."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tap-oktopost" / "archives"


@dataclasses.dataclass(frozen=True)
class RunKey:
    """What tells one export run's file from another: never a link."""

    export_id: str
    run_at: str
    file_name: str

    def stem(self) -> str:
        """Name an entry: the export's hash, then the run's (no text of either)."""
        export = hashlib.sha256(self.export_id.encode()).hexdigest()[:24]
        run = hashlib.sha256(f"{self.run_at}\n{self.file_name}".encode()).hexdigest()
        return f"{export}-{run[:24]}"


@dataclasses.dataclass(frozen=True)
class CachedFile:
    """A copy of a cached archive, private to the caller, and its version."""

    path: Path
    etag: str
    sha256: str
    scans: Any = None
    """What `add_scans` kept with the entry (JSON), once its bytes were checked."""


class ArchiveCache:
    """A bounded folder of archives, safe for several processes at once."""

    def __init__(self, folder: Path, max_bytes: int, logger: logging.Logger) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.logger = logger
        self._usable: bool | None = None

    def fetch(
        self,
        key: RunKey,
        into: Path,
        check_size: Callable[[int], None] | None = None,
    ) -> CachedFile | None:
        """Copy the run's cached archive to `into`, checked whole; None if none.

        `check_size` sees the entry's size before a byte is copied, and may raise
        (the caller's disk bounds). An entry whose bytes do not match its record is
        deleted, not read.
        """
        if not self._ready():
            return None
        data, meta = self._paths(key)
        with self._locked():
            try:
                record = json.loads(meta.read_text(encoding="utf-8"))
                etag, size, digest = record["etag"], record["size"], record["sha256"]
                if check_size is not None and isinstance(size, int):
                    check_size(size)
                copied = _copy_hashing(data, into)
            except (OSError, ValueError, KeyError, TypeError):
                copied = None
                etag = size = digest = None
            if copied is None or copied != (size, digest) or not isinstance(etag, str):
                into.unlink(missing_ok=True)
                if meta.exists() or data.exists():
                    self.logger.warning(
                        "Export %s: its cached archive is damaged or incomplete; "
                        "downloading it again",
                        key.export_id,
                    )
                    self._remove(data.name.removesuffix(".zip"))
                return None
            os.utime(data)  # recently used
        return CachedFile(into, etag, digest, record.get("scans"))

    def store(self, key: RunKey, source: Path, etag: str) -> str | None:
        """Keep a copy of a downloaded archive; drop the export's older runs.

        Gives the copy's SHA-256 (for `add_scans`), or None when not kept. An
        archive larger than the bound is not kept. A folder that cannot be
        written only costs the next process a download: a warning, no failure.
        """
        if not self._ready():
            return None
        try:
            size = source.stat().st_size
            if size > self.max_bytes:
                return None
            data, meta = self._paths(key)
            with self._locked():
                temporary = self._temporary()
                try:
                    copied = _copy_hashing(source, temporary)
                    record = {"etag": etag, "size": copied[0], "sha256": copied[1]}
                    self._remove_runs_of(key, keep=data.name)
                    self._make_room(size, keep=data.name)
                    meta.unlink(missing_ok=True)  # no record of the old bytes
                    temporary.replace(data)
                    self._write_record(meta, record)
                finally:
                    temporary.unlink(missing_ok=True)
        except OSError as error:
            self.logger.warning(
                "Cannot keep export %s's archive in the cache folder (%s): the next "
                "process downloads it again",
                key.export_id,
                error.strerror or type(error).__name__,
            )
            return None
        return str(copied[1])

    def add_scans(self, key: RunKey, sha256: str, scans: Any) -> None:
        """Keep what a scan of the entry's bytes found, in its record (JSON).

        Only while the entry still holds the bytes of that SHA-256: a newer copy
        gets none. Read back by `fetch` only with the bytes checked, and dropped
        with the entry. A failure costs the next process a scan: no warning.
        """
        if not self._ready():
            return
        _, meta = self._paths(key)
        with contextlib.suppress(OSError, ValueError, TypeError), self._locked():
            record = json.loads(meta.read_text(encoding="utf-8"))
            if isinstance(record, dict) and record.get("sha256") == sha256:
                record["scans"] = scans
                self._write_record(meta, record)

    def _ready(self) -> bool:
        """Make the folder, private; refuse one another user owns or can read."""
        if self._usable is None:
            self._usable = self.max_bytes > 0 and self._private_folder()
        return self._usable

    def _private_folder(self) -> bool:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = self.folder.lstat()
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
                self.folder.chmod(0o700)
                return True
            problem = "is not a folder of this user's"
        except OSError as error:
            problem = f"cannot be used ({error.strerror or type(error).__name__})"
        self.logger.warning(
            "The archive cache folder %s %s: archives are not cached, so a "
            "discovery and a sync in two processes each download them",
            self.folder,
            problem,
        )
        return False

    def _paths(self, key: RunKey) -> tuple[Path, Path]:
        stem = key.stem()
        return self.folder / f"{stem}.zip", self.folder / f"{stem}.json"

    def _temporary(self) -> Path:
        handle, name = tempfile.mkstemp(dir=self.folder, prefix=".part-")
        os.close(handle)
        return Path(name)

    def _write_record(self, meta: Path, record: dict[str, Any]) -> None:
        """Replace an entry's record whole: a reader sees the old one or the new."""
        temporary = self._temporary()
        try:
            with temporary.open("wb") as file:
                file.write(json.dumps(record).encode())
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(meta)
        finally:
            temporary.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        descriptor = os.open(self.folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _entries(self) -> list[Path]:
        return [path for path in self.folder.glob("*.zip") if path.is_file()]

    def _remove(self, stem: str) -> None:
        for suffix in (".json", ".zip"):
            (self.folder / f"{stem}{suffix}").unlink(missing_ok=True)

    def _remove_runs_of(self, key: RunKey, keep: str) -> None:
        """Drop the export's other runs: Oktopost serves only the newest."""
        export = key.stem().partition("-")[0]
        for path in self.folder.glob(f"{export}-*.zip"):
            if path.name != keep:
                self._remove(path.stem)

    def _make_room(self, size: int, keep: str) -> None:
        """Delete the least recently used entries until `size` more fits."""
        entries = sorted(
            (path for path in self._entries() if path.name != keep),
            key=lambda path: path.stat().st_mtime,
        )
        held = sum(path.stat().st_size for path in entries)
        while entries and held + size > self.max_bytes:
            oldest = entries.pop(0)
            held -= oldest.stat().st_size
            self._remove(oldest.stem)


def _copy_hashing(source: Path, target: Path) -> tuple[int, str]:
    """Copy a file, giving its size and SHA-256 as read."""
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as reading, target.open("wb") as writing:
        while piece := reading.read(_CHUNK):
            digest.update(piece)
            writing.write(piece)
            size += len(piece)
        writing.flush()
        os.fsync(writing.fileno())
    return size, digest.hexdigest()

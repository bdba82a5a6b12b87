"""BATCH files of CSV rows: JSON lines, encoded with msgspec, a bounded number a file.

With the SDK's `batch_config`, a CSV stream hands its target files instead of RECORD
messages. The SDK's own batcher would take each record through the per-record path
and hold a whole file's records in a list; here each record is encoded as it is read
(the same encoder as `tap_oktopost.output`, so a file's line holds what a RECORD's
`record` would) and written a megabyte at a time, so the tap holds one record and
one buffer whatever `batch_size` is. Files live until the next sync starts
(`remove_earlier_files`), unless the target deletes them once loaded.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import logging
import re
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec
from upath import UPath

from tap_oktopost.api.errors import OktopostError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from tap_oktopost.sdk_seams import BatchConfig

FLUSH_BYTES = 1024 * 1024
GZIP_LEVEL = 1
"""Fast: the files live for one load, and level 9 would double the tap's time."""
JSONL = "jsonl"
GZIP = "gzip"
_STEM = "tap-oktopost"
LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
_ENCODER = msgspec.json.Encoder(decimal_format="number")


class BatchSettingError(OktopostError):
    """A `batch_config` this tap cannot write: the sync stops before any file."""


def check_batch_config(batch_config: BatchConfig) -> None:
    """Refuse, before any file is written, what the files could not honour."""
    encoding = batch_config.encoding
    if encoding.format != JSONL:
        msg = (
            f"batch_config: encoding format {encoding.format!r}; this tap writes jsonl"
        )
        raise BatchSettingError(msg)
    if encoding.compression not in {None, "none", GZIP}:
        msg = (
            f"batch_config: compression {encoding.compression!r}; "
            "this tap writes gzip or none"
        )
        raise BatchSettingError(msg)
    if batch_config.batch_size < 1:
        msg = f"batch_config: batch_size {batch_config.batch_size}; at least 1"
        raise BatchSettingError(msg)


def prepare_root(batch_config: BatchConfig, logger: logging.Logger) -> int:
    """Make `storage.root` ready for this sync's files; give how many old ones went.

    A local root that does not exist yet is created, with an INFO line naming it, so
    that a typo in the path shows in the log rather than as files in an unexpected
    folder; one that cannot be a folder stops the sync before any file. Then the
    files of earlier syncs are deleted (`remove_earlier_files`).
    """
    storage = batch_config.storage
    root = UPath(storage.root, **storage.params).resolve()
    if root.protocol in LOCAL_PROTOCOLS:
        folder = Path(root.path)
        try:
            created = not folder.is_dir()
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            msg = (
                f"batch_config: storage.root {folder} cannot be created as a "
                f"folder ({error.strerror or type(error).__name__})"
            )
            raise BatchSettingError(msg) from None
        if created:
            logger.info(
                "Created the BATCH files folder %s (batch_config: storage.root)",
                folder,
            )
    return remove_earlier_files(batch_config)


def remove_earlier_files(batch_config: BatchConfig) -> int:
    """Delete the files that earlier syncs of the tap left under the root.

    target-postgres (0.8.1, like the SDK's targets) never deletes a file it loaded;
    target-snowflake does. By the time a sync starts, the pipeline before it has
    ended: its files are loaded, or their bookmarks did not move and the rows go out
    again. Give the root to one pipeline: a sync deletes what another is loading.
    """
    storage = batch_config.storage
    root = UPath(storage.root, **storage.params).resolve()
    first_name = root / f"{storage.prefix or ''}{_STEM}--"
    folder = first_name.parent
    if not folder.exists():
        return 0
    pattern = re.compile(
        re.escape(first_name.name) + r".+-[0-9a-f]{32}-[0-9]+\.json(?:\.gz)?"
    )
    removed = 0
    for path in folder.iterdir():
        if pattern.fullmatch(path.name):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


class BatchFiles:
    """Writes one stream's records to files of at most `batch_size` lines."""

    def __init__(self, batch_config: BatchConfig, stream_name: str) -> None:
        check_batch_config(batch_config)
        self.config = batch_config
        self.gzip = batch_config.encoding.compression == GZIP
        storage = batch_config.storage
        self.root = UPath(storage.root, **storage.params).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        prefix = storage.prefix or ""
        self.name_stem = f"{prefix}{_STEM}--{stream_name}-{uuid.uuid4().hex}"
        self.files_written = 0

    def write(self, records: Iterable[dict[str, Any]]) -> Iterator[tuple[str, int]]:
        """Write the records, giving each file's URL and rows once it is complete.

        A file is closed before its URL is given; if reading the records fails,
        the file being written is deleted (the ones given stay for the target).
        """
        iterator = iter(records)
        batch_size = self.config.batch_size
        while True:
            first = next(iterator, None)
            if first is None:
                return
            name = self._next_name()
            done = False
            try:
                with self._open(name) as file:
                    buffer = bytearray()
                    _ENCODER.encode_into(first, buffer, -1)
                    buffer += b"\n"
                    rows = 1
                    for record in itertools.islice(iterator, batch_size - 1):
                        rows += 1
                        _ENCODER.encode_into(record, buffer, -1)
                        buffer += b"\n"
                        if len(buffer) >= FLUSH_BYTES:
                            file.write(buffer)
                            buffer.clear()
                    file.write(buffer)
                done = True
            finally:
                if not done:
                    self._delete(name)
            yield (self.root / name).as_uri(), rows

    def _next_name(self) -> str:
        self.files_written += 1
        suffix = ".json.gz" if self.gzip else ".json"
        return f"{self.name_stem}-{self.files_written}{suffix}"

    @contextlib.contextmanager
    def _open(self, name: str) -> Iterator[IO[bytes]]:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as raw:
            if self.gzip:
                with gzip.GzipFile(
                    fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0
                ) as zipped:
                    yield zipped  # type: ignore[misc]
            else:
                yield raw

    def _delete(self, name: str) -> None:
        with contextlib.suppress(OSError):
            (self.root / name).unlink(missing_ok=True)

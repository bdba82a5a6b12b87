"""BATCH files of CSV rows: JSON lines, encoded with msgspec, a bounded number a file.

With the SDK's `batch_config`, a CSV stream hands its target files instead of RECORD
messages. The SDK's own batcher would take each record through the per-record path
and hold a whole file's records in a list; here each record is encoded as it is read
(the same encoder as `tap_oktopost.output`, so a file's line holds what a RECORD's
`record` would) and written a megabyte at a time, so the tap holds one record and
one buffer whatever `batch_size` is. The target deletes each file once loaded: see
the README's BATCH section.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import uuid
from typing import IO, TYPE_CHECKING, Any

import msgspec
from upath import UPath

from tap_oktopost.client import OktopostError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from singer_sdk.helpers._batch import BatchConfig

FLUSH_BYTES = 1024 * 1024
GZIP_LEVEL = 1
"""Fast: the files live for one load, and level 9 would double the tap's time."""
JSONL = "jsonl"
GZIP = "gzip"
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
        self.name_stem = f"{prefix}tap-oktopost--{stream_name}-{uuid.uuid4().hex}"
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
        with (self.root / name).open("wb") as raw:
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

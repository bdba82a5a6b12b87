"""RECORD messages of CSV rows, encoded and written in batches.

Export files run to millions of rows. Going through the SDK's per-record path costs
more than reading and parsing them (selection masks, type conformance, stream maps,
a message object, a flush per line), so rows that need none of that are encoded here
in one `msgspec` call each and written to stdout a batch at a time. The lines are the
ones the SDK's own writer would produce but for `time_extracted`: one time per file
read, not one per record (tests/test_records.py compares the two).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter

if TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message

FLUSH_BYTES = 1024 * 1024
_ENCODER = msgspec.json.Encoder(decimal_format="number")


class RecordLines:
    """Buffers one stream's RECORD lines; `flush` before any other message goes out."""

    def __init__(self, stream_alias: str, time_extracted: str) -> None:
        self.prefix = b'{"type":"RECORD","stream":%b,"record":' % _ENCODER.encode(
            stream_alias
        )
        self.suffix = b',"time_extracted":%b}\n' % _ENCODER.encode(time_extracted)
        self.buffer = bytearray()

    def add(self, record: dict[str, Any]) -> None:
        """Encode one record, writing out the batch once it is large."""
        buffer = self.buffer
        buffer += self.prefix
        _ENCODER.encode_into(record, buffer, -1)
        buffer += self.suffix
        if len(buffer) >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write out what is buffered, in order with the SDK's own messages."""
        if self.buffer:
            sys.stdout.buffer.write(self.buffer)
            sys.stdout.flush()
            self.buffer.clear()


class StoppableWriter(MsgSpecWriter):
    """The SDK's msgspec writer, writing nothing once a signal stopped the tap.

    The tap's signal handler raises SystemExit wherever the main thread is, and
    CPython drops it where that is a finalizer (a gzip or ZIP member file being freed
    as the signal arrives): the sync would run on and exit 0. The next message raises
    it again instead.
    """

    exit_code: int | None = None
    """128 + the signal that stopped the tap, once one did."""

    def write_message(self, message: Message) -> None:
        """Write the message, unless the tap was stopped: then exit."""
        if self.exit_code is not None:
            sys.exit(self.exit_code)
        super().write_message(message)

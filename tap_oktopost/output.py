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
from typing import Any

import msgspec

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

"""RECORD messages of CSV rows, encoded and written in batches.

Export files run to millions of rows. Going through the SDK's per-record path costs
more than reading and parsing them (selection masks, type conformance, stream maps,
a message object, a flush per line), so rows that need none of that are encoded here
in one `msgspec` call each and written to stdout a batch at a time. The lines are the
ones the SDK's own writer would produce but for `time_extracted`: one time per file
read, not one per record (tests/in_process/test_records.py compares the two).
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from singer_sdk.singerlib import Message

FLUSH_BYTES = 1024 * 1024
_ENCODER = msgspec.json.Encoder(decimal_format="number")


class WholeMessageWriter(MsgSpecWriter):
    """The SDK's msgspec writer, for its messages and the tap's RECORD batches.

    Each write goes out whole: a signal handler runs inside a write the signal
    interrupted, and had it written a STATE or ended the process there, the target
    would read a line cut in two; so what the tap does on a signal waits for the
    write under way (`after_writes`). Once a signal stopped the tap, nothing more is
    written: the SystemExit of the handler can be lost where it is raised (CPython
    drops it in a finalizer, e.g. a gzip or ZIP member file being freed), and the
    next write raises it again.
    """

    def __init__(self) -> None:
        super().__init__()
        self.under_way = 0
        self.waiting: Callable[[], None] | None = None
        self.exit_code: int | None = None
        """128 + the signal that stopped the tap, once one did."""

    def write_message(self, message: Message) -> None:
        """Write one message whole."""
        self.write_out(self.format_message(message))

    @contextlib.contextmanager
    def whole_write(self) -> Iterator[None]:
        """Mark a write under way; what `after_writes` was given runs at its end."""
        self.under_way += 1
        try:
            yield
        finally:
            self.under_way -= 1
            waiting = self.waiting
            if waiting is not None and not self.under_way:
                self.waiting = None
                waiting()

    def after_writes(self, action: Callable[[], None]) -> None:
        """Run `action` now, or at the end of the write under way."""
        if self.under_way:
            self.waiting = action
        else:
            action()

    def write_out(self, data: bytes | bytearray) -> None:
        """Write bytes to stdout whole, whatever a signal does to the write.

        Under PYTHONUNBUFFERED (set in many containers) stdout's binary layer is
        raw, and a pipe write that a signal interrupts writes part and says how
        much: the rest is written here instead of being dropped.
        """
        if self.exit_code is not None:
            sys.exit(self.exit_code)
        out = sys.stdout.buffer
        start = 0
        with self.whole_write():
            while start < len(data):
                # Views released at once: `data` may be resized after a failed write.
                with memoryview(data) as whole, whole[start:] as rest:
                    written = out.write(rest)
                    start += len(rest) if written is None else written
            sys.stdout.flush()


class RecordLines:
    """Buffers one stream's RECORD lines; `flush` before any other message goes out."""

    def __init__(
        self,
        writer: WholeMessageWriter,
        stream_alias: str,
        time_extracted: str,
        sent: Callable[[int], None] = lambda records: None,
    ) -> None:
        self.writer = writer
        self.prefix = b'{"type":"RECORD","stream":%b,"record":' % _ENCODER.encode(
            stream_alias
        )
        self.suffix = b',"time_extracted":%b}\n' % _ENCODER.encode(time_extracted)
        self.buffer = bytearray()
        self.buffered = 0
        self.sent = sent
        """Told how many records each write put out: progress counts what went."""

    def add(self, record: dict[str, Any]) -> None:
        """Encode one record, writing out the batch once it is large."""
        buffer = self.buffer
        buffer += self.prefix
        _ENCODER.encode_into(record, buffer, -1)
        buffer += self.suffix
        self.buffered += 1
        if len(buffer) >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write out what is buffered, in order with the SDK's own messages."""
        if self.buffer:
            with self.writer.whole_write():  # all done before a signal acts
                self.writer.write_out(self.buffer)
                self.buffer.clear()
                written, self.buffered = self.buffered, 0
                self.sent(written)

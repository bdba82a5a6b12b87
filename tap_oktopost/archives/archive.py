"""Which members of an export's ZIP archive are tables, and reading them safely.

An archive holds what Oktopost, or whoever repacked it, put there: CSV files, but also
macOS metadata, hidden files, empty files, reports, or another ZIP archive. Only CSV
files with data become table members; every other member is listed with the reason
it is not loaded, so a user can see what the tap left out and why.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import weakref
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from tap_oktopost.api.errors import OktopostError, printable
from tap_oktopost.tables.csv_data import read_error_text
from tap_oktopost.tables.names import table_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_oktopost.api.exports import ExportRun
    from tap_oktopost.tables.csv_data import MemberScan

MAX_COMPRESSION_RATIO = 1000
"""CSV deflates 5 to 50 times; a large member past this ratio is a zip bomb."""
RATIO_CHECK_BYTES = 10 * 1024 * 1024
MAX_ARCHIVE_RATIO = 400
"""The archive's CSV files together past this many times the compressed bytes they
come from are a bomb of many members, each under RATIO_CHECK_BYTES; even very
repetitive CSV (long rows of zeros, ids repeating) deflates 150 to 300 times."""
ARCHIVE_RATIO_CHECK_BYTES = 32 * 1024 * 1024
"""Below this much CSV in all, an archive is too small to be a bomb worth refusing."""
DEFAULT_MAX_UNCOMPRESSED_BYTES = 20 * 1024**3
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    struct.error,
)
"""What `zipfile` raises on a damaged or unusual archive.

Bad headers and CRCs (BadZipFile), broken deflate data (zlib.error, EOFError), names
that are not UTF-8 (ValueError), encryption (RuntimeError), unknown compression
methods (NotImplementedError), fields cut short (struct.error).
"""
READABLE_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_ENCRYPTED = 0x1
_PATH_PARTS = re.compile(r"[/\\]")
EMPTY = "empty file"
NOT_CSV = "not a CSV file"
MACOS_METADATA = "macOS metadata"
HIDDEN = "hidden file"
LOCK_FILE = "lock, owner or backup file of an editor"
SYSTEM_FILE = "file a file manager keeps"
NO_TABLE_NAME = "no letter or digit in its name to name a table after"
QUIET_REASONS = frozenset({NOT_CSV, MACOS_METADATA, HIDDEN, LOCK_FILE, SYSTEM_FILE})
"""Reasons that are no news: files no export's data is in."""


class SeekableBytes(Protocol):
    """What `zipfile` reads an archive from: a file, or a `RemoteFile`."""

    def seek(self, offset: int, whence: int = 0, /) -> int:
        """Move the read position."""

    def read(self, size: int = -1, /) -> bytes:
        """Read bytes from the read position."""

    def tell(self) -> int:
        """Give the read position."""


class UnloadableExportError(OktopostError):
    """An export whose run the tap cannot load; the other exports still load."""


class NotCsvExportError(UnloadableExportError):
    """A run whose file holds no CSV data (a report): nothing there to load, ever."""


class DamagedArchiveError(OktopostError):
    """An archive, or a part of it, that cannot be read as stored."""


class DamagedMemberError(DamagedArchiveError, zipfile.BadZipFile):
    """A member that cannot be read: a bad CRC, broken compressed data.

    Also a `zipfile.BadZipFile`, so code reading rows catches it with the other read
    errors, and code around that catches it as an `OktopostError` naming the export.
    """


def is_zip(member_path: str) -> bool:
    """Say whether a member's name says it is a ZIP archive."""
    return member_path.lower().endswith(".zip")


def skip_reason(info: zipfile.ZipInfo) -> str | None:
    """Say why a member is not loaded; None for a CSV file with data, or a ZIP.

    A CSV file whose name makes no table name is told by `table_name` alone.
    """
    return _name_reason(info.filename) or _content_reason(info)


# Office's owner files (`~$Posts.csv`, binary) and temporary files (`~WRL0001.tmp`),
# LibreOffice's `.~lock.Posts.csv#`, Emacs's `.#Posts.csv` and `#Posts.csv#`, and
# backups such as `Posts.csv~`: beside a CSV file, never its data.
_LOCK_NAME = re.compile(r"~.*|\.~lock\..*#|\.#.*|#.*#|.*~", re.DOTALL)
_SYSTEM_NAMES = frozenset(
    {"thumbs.db", "ehthumbs.db", "desktop.ini", ".ds_store", ".localized", "icon\r"}
)


def _name_reason(name: str) -> str | None:
    parts = _PATH_PARTS.split(name)
    if "__MACOSX" in parts or parts[-1].startswith("._"):
        return MACOS_METADATA  # the folder and AppleDouble files macOS zips add
    if _LOCK_NAME.fullmatch(parts[-1]):
        return LOCK_FILE
    if parts[-1].lower() in _SYSTEM_NAMES:
        return SYSTEM_FILE
    if any(part.startswith(".") and part not in {".", ".."} for part in parts):
        return HIDDEN
    if not name.lower().endswith((".csv", ".csv.gz")) and not is_zip(name):
        return NOT_CSV
    return None


def _content_reason(info: zipfile.ZipInfo) -> str | None:
    if info.flag_bits & _ENCRYPTED:
        return "encrypted"
    if info.compress_type not in READABLE_METHODS:
        return f"compressed with method {info.compress_type}, which zipfile lacks"
    if info.file_size == 0:
        return EMPTY
    return None


def member_table(member_path: str) -> str | None:
    """Name the table of a CSV member, gzipped (`.csv.gz`) or not."""
    if member_path.lower().endswith(".csv.gz"):
        member_path = member_path[: -len(".gz")]
    return table_name(member_path)


def single_file_table(file_name: str) -> str | None:
    """Name the table of an export whose file is one CSV file, by the file's name.

    `2026-11-30-Reach.csv.gz` and `2026-11-30-Reach.csv` make `reach`; a name with
    another ending (`Posts-Report.zip` holding CSV text) loses it: `posts_report`.
    """
    stem = file_name.removesuffix(".gz").removesuffix(".GZ")
    if not stem.lower().endswith(".csv"):
        stem = f"{stem.rpartition('.')[0] or stem}.csv"
    return table_name(stem)


def _ratio(info: zipfile.ZipInfo) -> float:
    return info.file_size / max(info.compress_size, 1)


def _zip_bomb(info: zipfile.ZipInfo) -> bool:
    return info.file_size > RATIO_CHECK_BYTES and _ratio(info) > MAX_COMPRESSION_RATIO


def _compressed_read(stream: IO[bytes], info: zipfile.ZipInfo) -> int:
    """Give the compressed bytes a member's stream inflated so far.

    zipfile counts `_compress_left` down from the size the central directory
    claims as it reads ahead; less what its decompressor holds unread, that is what
    was really inflated, whatever the claim. A Python without that count gives the
    claim.
    """
    left = getattr(stream, "_compress_left", None)
    if not isinstance(left, int):
        return info.compress_size
    unread = getattr(getattr(stream, "_decompressor", None), "unconsumed_tail", b"")
    return max(info.compress_size - left - len(unread), 1)


@dataclass(frozen=True)
class _Member:
    """A table member and the archive holding it: the export's, or one inside it.

    Without `info` and `holder` the member is the export's file itself, one CSV
    file; `gzipped` members are inflated again by gzip.
    """

    info: zipfile.ZipInfo | None
    holder: zipfile.ZipFile | None
    gzipped: bool


class ByteReader(io.RawIOBase):
    """A readable raw stream whose `read` does the work: `readinto` follows it."""

    def readable(self) -> bool:
        """Say it can be read."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into a buffer, as `io.RawIOBase` does."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _SharedReader(ByteReader):
    """A reader of its own over a file that other readers share: it seeks first."""

    def __init__(self, source: SeekableBytes) -> None:
        self.source = source
        self.position = 0

    def read(self, size: int | None = -1) -> bytes:
        """Read from this reader's position, wherever the others left the file."""
        self.source.seek(self.position)
        data = self.source.read(-1 if size is None else size)
        self.position += len(data)
        return data

    def tell(self) -> int:
        """Give the bytes read so far."""
        return self.position


class InflationLimitError(UnloadableExportError):
    """A member that inflated past a limit as it was read: a zip bomb, or a lie.

    Counted on the bytes actually inflated, whatever sizes the archive claims.
    """


class _MemberReader(ByteReader):
    """A member's bytes, counted as they inflate; damage raises `DamagedMemberError`.

    Reads are at most READ_BYTES, so no single read inflates much past a limit.
    """

    READ_BYTES = 1024 * 1024

    def __init__(
        self,
        stream: IO[bytes],
        where: str,
        count: Callable[[int], None],
        underneath: IO[bytes] | None = None,
    ) -> None:
        self.stream = stream
        self.where = where
        self.count = count
        self.underneath = underneath
        """What `stream` inflates (gzip reads it), closed with it."""
        self.inflated = 0

    def read(self, size: int | None = -1) -> bytes:
        """Read as the member's own stream does, naming the member on damage."""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(self.READ_BYTES), b""))
        failure: DamagedMemberError | None = None
        try:
            data = self.stream.read(min(size, self.READ_BYTES))
        except ZIP_ERRORS as error:
            failure = DamagedMemberError(
                f"{self.where}: {type(error).__name__}: {printable(str(error))}"
            )
        if failure is not None:
            raise failure  # out of the handler, so no chained error is printed
        self.inflated += len(data)
        self.count(self.inflated)
        return data

    def close(self) -> None:
        """Close the member's stream too."""
        self.stream.close()
        if self.underneath is not None:
            self.underneath.close()
        super().close()


class ExportArchive:
    """A ZIP archive of one export run, read member by member.

    Members are read in place, never extracted. A CSV file inside a ZIP member is a
    member too, named `outer.zip/inner.csv`; it is read through the outer member, so
    its archive is inflated again for each file in it (fine for the few files such a
    repacked export holds). Deeper nesting is not read. A `.csv.gz` member is
    inflated by gzip too. An export whose file is one CSV file, gzipped or not, is
    an archive of one member named `single`, the file's name.

    What members inflate to is counted as they are read, not taken from the central
    directory: a member past MAX_COMPRESSION_RATIO times the compressed bytes read
    for it (once past RATIO_CHECK_BYTES), the archive's members together past
    MAX_ARCHIVE_RATIO times the compressed bytes read for them all (once past
    ARCHIVE_RATIO_CHECK_BYTES), or past `max_uncompressed_bytes`, raise
    `InflationLimitError`. A member read twice counts once, as far as it got.
    """

    def __init__(
        self,
        run: ExportRun,
        source: Path | SeekableBytes,
        max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
        *,
        single: str | None = None,
        gzipped: bool = False,
    ) -> None:
        """Open the archive; raises what `zipfile` raises on a damaged one."""
        self.run = run
        self.source = source
        self.path = source if isinstance(source, Path) else None
        self.max_uncompressed_bytes = max_uncompressed_bytes
        self._inflated: dict[str, tuple[int, int]] = {}
        """Per member, the bytes inflated and the compressed bytes they came from."""
        self._inflated_total = 0
        self._compressed_total = 0
        self.tables: dict[str, list[str]] = {}
        self.skipped: list[tuple[str, str]] = []
        """Members not loaded, with why: (member, reason)."""
        self._members: dict[str, _Member] = {}
        self._nested: list[zipfile.ZipFile] = []
        self.scans: dict[str, MemberScan] = {}
        """Per member, discovery's whole scan of these very bytes, for the sync to
        reuse (see `csv_data.rescan`): none for a member read remotely."""
        self.cache_digest: str | None = None
        """The SHA-256 of the cache entry holding these bytes, if one does."""
        self.zip_file: zipfile.ZipFile | None = None
        if single is not None:
            self._add_single(single, gzipped=gzipped)
            return
        self.zip_file = zipfile.ZipFile(source)
        # Closed when the archive is collected, even in a reference cycle, before
        # its open file would be collected unclosed.
        weakref.finalize(self, self.zip_file.close)
        try:
            self._add_members(self.zip_file, "")
        except BaseException:
            self._close()
            raise

    @property
    def where(self) -> str:
        """Name the export in messages."""
        return f"Export {self.run.export_id} ({self.run.export_type})"

    def _add_single(self, name: str, *, gzipped: bool) -> None:
        table = single_file_table(name)
        if table is None:
            self.skipped.append((name, NO_TABLE_NAME))
            return
        self._members[name] = _Member(None, None, gzipped)
        self.tables[table] = [name]

    def _add_members(self, holder: zipfile.ZipFile, prefix: str) -> None:
        for info in holder.infolist():
            if info.is_dir():
                continue
            member = prefix + info.filename
            reason = skip_reason(info)
            if reason is None and member in self._members:
                reason = "a second member of the same name"
            if reason is None and is_zip(info.filename):
                if prefix:
                    reason = "an archive inside an archive inside the export's archive"
                else:
                    reason = self._add_nested(info, member)
            elif reason is None:
                name = member_table(info.filename)
                if name is None:
                    reason = NO_TABLE_NAME
                else:
                    gzipped = info.filename.lower().endswith(".gz")
                    self._members[member] = _Member(info, holder, gzipped)
                    self.tables.setdefault(name, []).append(member)
            if reason is not None:
                self.skipped.append((member, reason))

    def _add_nested(self, info: zipfile.ZipInfo, member: str) -> str | None:
        """Add the members of a ZIP member; else say why it is not read."""
        if _zip_bomb(info):
            return f"inflates {_ratio(info):.0f} times: likely a zip bomb"
        assert self.zip_file is not None  # noqa: S101 - only a ZIP has members
        try:
            nested = zipfile.ZipFile(self.zip_file.open(info))
        except ZIP_ERRORS as error:
            return f"a ZIP archive that cannot be read ({type(error).__name__})"
        self._nested.append(nested)
        if not nested.infolist():
            return "an empty ZIP archive"
        self._add_members(nested, member + "/")
        return None

    def open_member(self, member: str) -> IO[bytes]:
        """Open one table member for streaming reads, its inflation counted.

        Raises `DamagedMemberError` when the member cannot be opened or read, and
        `InflationLimitError` when it inflates past a limit.
        """
        found = self._members[member]
        where = f"{self.where}, file {printable(member)}"
        failure: DamagedMemberError | None = None
        try:
            raw, compressed = self._open_raw(found)
            stream = (
                cast("IO[bytes]", gzip.GzipFile(fileobj=raw, mode="rb"))
                if found.gzipped
                else raw
            )
        except ZIP_ERRORS as error:
            message = f"{where}: {type(error).__name__}: {printable(str(error))}"
            failure = DamagedMemberError(message)
        if failure is not None:
            raise failure

        def count(inflated: int) -> None:
            read = compressed()
            if inflated > RATIO_CHECK_BYTES and inflated > read * MAX_COMPRESSION_RATIO:
                message = (
                    f"{where}: {read} compressed bytes inflated to over "
                    f"{inflated}, past {MAX_COMPRESSION_RATIO} times: refusing "
                    "a likely zip bomb"
                )
                raise InflationLimitError(message)
            self._count_inflated(member, inflated, read, where)

        underneath = raw if found.gzipped else None
        return cast("IO[bytes]", _MemberReader(stream, where, count, underneath))

    def _open_raw(self, found: _Member) -> tuple[IO[bytes], Callable[[], int]]:
        """Open a member's stored bytes, and how many of the file's it has read."""
        if found.holder is None or found.info is None:
            raw = cast(
                "IO[bytes]",
                self.source.open("rb")
                if isinstance(self.source, Path)
                else _SharedReader(self.source),
            )
            return raw, lambda: max(raw.tell(), 1)
        info = found.info
        stream = found.holder.open(info)
        return stream, lambda: _compressed_read(stream, info)

    def _count_inflated(
        self, member: str, inflated: int, compressed: int, where: str
    ) -> None:
        """Add a member's newly inflated bytes to the archive's totals; check them."""
        before, before_compressed = self._inflated.get(member, (0, 0))
        if inflated <= before:
            return
        compressed = max(compressed, before_compressed)
        self._inflated[member] = (inflated, compressed)
        self._inflated_total += inflated - before
        self._compressed_total += compressed - before_compressed
        if self._inflated_total > self.max_uncompressed_bytes:
            message = (
                f"{where}: the archive's CSV files inflate past the "
                f"max_uncompressed_bytes setting ({self.max_uncompressed_bytes}), "
                "whatever sizes the archive claims"
            )
            raise InflationLimitError(message)
        if (
            self._inflated_total > ARCHIVE_RATIO_CHECK_BYTES
            and self._inflated_total > self._compressed_total * MAX_ARCHIVE_RATIO
        ):
            message = (
                f"{where}: the archive's CSV files together inflated "
                f"{self._compressed_total} compressed bytes to over "
                f"{self._inflated_total}, past {MAX_ARCHIVE_RATIO} times: refusing "
                "a likely zip bomb of many members"
            )
            raise InflationLimitError(message)

    def check_limits(self, max_uncompressed_bytes: int) -> None:
        """Refuse an archive that would inflate past the limits (a zip bomb).

        Judged on the sizes the ZIP claims; `open_member` counts what really
        inflates. The one file of a single-file export claims nothing.
        """
        members = {
            member: found.info
            for member, found in self._members.items()
            if found.info is not None
        }
        total = sum(info.file_size for info in members.values())
        if total > max_uncompressed_bytes:
            message = (
                f"{self.where}: its CSV files hold {total} bytes uncompressed, over "
                f"the max_uncompressed_bytes setting ({max_uncompressed_bytes})"
            )
            raise UnloadableExportError(message)
        for member, info in members.items():
            if _zip_bomb(info):
                message = (
                    f"{self.where}: {printable(member)} inflates {_ratio(info):.0f} "
                    f"times, over the limit of {MAX_COMPRESSION_RATIO}: refusing a "
                    "likely zip bomb"
                )
                raise UnloadableExportError(message)
        compressed = sum(info.compress_size for info in members.values())
        if (
            total > ARCHIVE_RATIO_CHECK_BYTES
            and total > max(compressed, 1) * MAX_ARCHIVE_RATIO
        ):
            message = (
                f"{self.where}: its {len(members)} CSV files claim {total} bytes "
                f"from {compressed} compressed, over {MAX_ARCHIVE_RATIO} times in "
                "all: refusing a likely zip bomb of many members"
            )
            raise UnloadableExportError(message)

    def skipped_summary(self) -> str:
        """Name the members not loaded and why, on one line."""
        return "; ".join(
            f"{printable(member)} ({reason})" for member, reason in self.skipped
        )

    def delete(self) -> None:
        """Close the archive and remove its file, if it has one."""
        self._close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        for nested in self._nested:
            nested.close()
        if self.zip_file is not None:
            self.zip_file.close()


def member_error(
    archive: ExportArchive, member: str, error: Exception, stage: str
) -> OktopostError:
    """Name the export, the file and where in it reading broke off."""
    if isinstance(error, OktopostError):  # it names the export and file already
        return OktopostError(f"{error} ({stage})")
    where = f"Export {archive.run.export_id}, file {printable(member)}, {stage}"
    return OktopostError(f"{where}: {printable(read_error_text(error))}")

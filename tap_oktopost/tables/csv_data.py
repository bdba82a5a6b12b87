"""Reading export CSV members: one decoding per file, type scans and records.

Names come from `tables.names` and types from `tables.column_types`: import them
from there.

A sync reads each member twice from local disk: `scan_member` decides the text
encoding and the narrowest types holding every value, then `CsvSource` with that
decoding and a `RecordBuilder` with the settled types make the records. After a
discovery that scanned the same bytes whole, `rescan` gives the sync's scan from
discovery's, and the member is read once.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import itertools
import zipfile
import zlib
from typing import IO, TYPE_CHECKING, Any

from tap_oktopost.tables.column_types import (
    CONVERTERS,
    PROVEN_CONVERTERS,
    ColumnType,
    rescanned_type,
    scan_types,
)
from tap_oktopost.tables.names import (
    EXPORT_ID,
    EXPORT_RUN_AT,
    EXTRA_VALUES,
    ROW_NUMBER,
    SOURCE_FILE,
    SYNC_TIMESTAMP,
    UNFIT_VALUES,
    EarlierNames,
    column_names,
)

if TYPE_CHECKING:
    from collections.abc import (
        Callable,
        Collection,
        Iterable,
        Iterator,
        Mapping,
        Sequence,
    )

__all__ = [
    "DEFAULT_KEY",
    "METADATA_PROPERTIES",
    "READ_ERRORS",
    "CsvSource",
    "Decoding",
    "MemberScan",
    "RecordBuilder",
    "decoding_of",
    "rescan",
    "scan_member",
    "scan_of_json",
    "scan_to_json",
]

DEFAULT_KEY = (EXPORT_ID, EXPORT_RUN_AT, SOURCE_FILE, ROW_NUMBER)
METADATA_PROPERTIES: dict[str, dict[str, Any]] = {
    EXPORT_ID: {"type": ["string"], "description": "Oktopost BI export Id"},
    SYNC_TIMESTAMP: {
        "type": ["string"],
        "format": "date-time",
        "description": "When the tap extracted the row",
    },
    SOURCE_FILE: {"type": ["string"], "description": "CSV member path in the archive"},
    ROW_NUMBER: {"type": ["integer"], "description": "1-based data row in the file"},
    EXPORT_RUN_AT: {
        "type": ["string"],
        "format": "date-time",
        "description": "LastRunDate of the export run the row comes from",
    },
    EXTRA_VALUES: {
        "type": ["array", "null"],
        "items": {"type": "string"},
        "description": "Values beyond the header's last column",
    },
    UNFIT_VALUES: {
        "type": ["object", "null"],
        "additionalProperties": {"type": "string"},
        "description": (
            "Column name -> original text of this row's values that do not fit "
            "their column's type (the column itself holds null)"
        ),
    },
}


DEFAULT_MAX_FIELD_CHARACTERS = 8 * 1024 * 1024
"""Longest CSV field and line read: a long post's text is kilobytes, and a hostile
file could otherwise hold one field of gigabytes in memory."""
FIELD_LIMIT_SETTING = "max_csv_field_characters"
_line_limit: int | None = None


def limit_field_size(characters: int) -> None:
    """Cap CSV fields and physical lines, for every file this process reads.

    The csv module's own field cap is process-wide (its default, 128 KiB, is too
    small for long posts), so the line cap is too.
    """
    global _line_limit  # noqa: PLW0603 - one setting for the process, as csv's
    _line_limit = characters
    csv.field_size_limit(characters)


def field_limit() -> int:
    """Give the line cap, setting the default caps if nothing set them yet.

    Called when a reader is built, not at import: the caps are the process's.
    """
    if _line_limit is None:
        limit_field_size(DEFAULT_MAX_FIELD_CHARACTERS)
        return DEFAULT_MAX_FIELD_CHARACTERS
    return _line_limit


class FieldTooLargeError(csv.Error):
    """A field or line past the max_csv_field_characters setting."""


def read_error_text(error: Exception) -> str:
    """Say what broke a file's reading, naming the setting for an oversized field."""
    if isinstance(error, (FieldTooLargeError, SeparatorError)):
        return str(error)
    if isinstance(error, csv.Error) and "field larger than field limit" in str(error):
        return (
            f"a field is longer than the {FIELD_LIMIT_SETTING} setting "
            f"({csv.field_size_limit()} characters); raise it if the file is genuine"
        )
    return f"{type(error).__name__}: {error}"


READ_ERRORS = (
    csv.Error,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    UnicodeDecodeError,
)
"""What reading a damaged or odd CSV member can raise."""


def _undefined_as_latin1(error: UnicodeError) -> tuple[str, int]:
    """Read the five bytes cp1252 leaves undefined as Latin-1: nothing is lost."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start : error.end].decode("latin-1"), error.end


class _Replacements:
    """Replace bytes that are not UTF-8 by U+FFFD, counting them as evidence.

    A stray byte (one no UTF-8 sequence starts or continues) is what text in
    another encoding leaves; a cut sequence (a lead byte with its continuation
    bytes, then no more) is what a damaged UTF-8 file leaves. One handler serves
    the process: readers take the counts' difference over their own reads.
    """

    name = "tap-oktopost-replace"

    def __init__(self) -> None:
        self.uses = 0
        self.stray_bytes = 0

    def __call__(self, error: UnicodeError) -> tuple[str, int]:
        if not isinstance(error, UnicodeDecodeError):
            raise error
        self.uses += 1
        if error.end - error.start == 1:
            self.stray_bytes += 1
        return "\ufffd", error.end

    def counts(self) -> tuple[int, int]:
        return self.uses, self.stray_bytes


_LATIN1_ERRORS = "tap-oktopost-undefined-as-latin1"
_REPLACEMENTS = _Replacements()


def _register_error_handlers() -> None:
    """Register the decoding error handlers by name, before a decoding uses them.

    Called by the readers rather than at import; registering again is harmless.
    """
    codecs.register_error(_LATIN1_ERRORS, _undefined_as_latin1)
    codecs.register_error(_Replacements.name, _REPLACEMENTS)


_NON_ASCII_BYTES = bytes(range(128, 256))


@dataclasses.dataclass(frozen=True)
class Decoding:
    """How a whole member's bytes become text; `note` says what was repaired."""

    encoding: str
    errors: str = "strict"
    note: str | None = None


UTF_8 = Decoding("utf-8-sig", _Replacements.name)
UTF_16 = Decoding("utf-16")
CP1252 = Decoding(
    "cp1252",
    _LATIN1_ERRORS,
    "text that is not UTF-8 was read as Windows-1252 (cp1252)",
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def is_utf8_at_heart(non_ascii_bytes: int, stray_bytes: int) -> bool:
    """Say whether bytes are UTF-8 text, perhaps damaged, rather than cp1252.

    cp1252 text leaves its non-ASCII characters as stray bytes; UTF-8 text, even
    with a damaged byte or a character cut short, has most of them in sequences.
    So a file is cp1252 only when most of its non-ASCII bytes are stray.
    """
    return stray_bytes * 2 <= non_ascii_bytes


def decoding_of(head: bytes, *, whole: bool) -> Decoding:
    """Decide a member's decoding from its first bytes (`whole`: all of them).

    A UTF-16 BOM decides; else the evidence of `is_utf8_at_heart` (a character
    cut at the end of a head sample is no evidence).
    """
    if head[:2] in _UTF16_BOMS:
        return UTF_16
    if head.isascii():
        return UTF_8
    _register_error_handlers()
    _, stray_before = _REPLACEMENTS.counts()
    codecs.getincrementaldecoder("utf-8")(_Replacements.name).decode(head, final=whole)
    stray = _REPLACEMENTS.stray_bytes - stray_before
    text = head.removeprefix(codecs.BOM_UTF8)
    non_ascii = len(text) - len(text.translate(None, _NON_ASCII_BYTES))
    return UTF_8 if is_utf8_at_heart(non_ascii, stray) else CP1252


class _MemberBytes(io.RawIOBase):
    """A member's bytes, its first few put back, counting the non-ASCII ones.

    A UTF-8 BOM in front of text read as cp1252 is dropped: it would otherwise
    become "ï»¿" in the first column's name.
    """

    def __init__(self, binary: IO[bytes]) -> None:
        self.binary = binary
        self.head = b""
        self.non_ascii = 0
        self.drop_utf8_bom = False
        self.at_start = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        data = self.head[:size] or self.binary.read(size)
        self.head = self.head[size:]
        if self.at_start and data:
            self.at_start = False
            if data.startswith(codecs.BOM_UTF8):
                self.non_ascii -= len(codecs.BOM_UTF8)  # a mark, not text
                if self.drop_utf8_bom:
                    data = data[len(codecs.BOM_UTF8) :] or self.binary.read(size)
                    self.non_ascii = 0
        if not data.isascii():
            self.non_ascii += len(data) - len(data.translate(None, _NON_ASCII_BYTES))
        buffer[: len(data)] = data
        return len(data)


class SeparatorError(csv.Error):
    """A header line whose separator cannot be told."""


SEPARATORS = (",", ";", "\t", "|")
_SEPARATOR_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}


def _separator_counts(line: str) -> dict[str, int]:
    """Count each separator outside quoted fields."""
    outside = "".join(line.split('"')[::2])
    return {separator: outside.count(separator) for separator in SEPARATORS}


def separator_of(header: str, next_record: str | None = None) -> str:
    """Give the separator of a CSV file from its header line (quotes respected).

    The most frequent of `,` `;` tab `|` outside quotes; a tie is broken by the
    one record after the header (`next_record`) holding as many, or is an error. A
    header with none of them is one column, separated by commas.
    """
    counts = _separator_counts(header)
    most = max(counts.values())
    if most == 0:
        return ","
    tied = [separator for separator, count in counts.items() if count == most]
    if len(tied) > 1 and next_record is not None:
        following = _separator_counts(next_record)
        tied = [separator for separator in tied if following[separator] == most]
    if len(tied) == 1:
        return tied[0]
    names = " and ".join(
        _SEPARATOR_NAMES[separator]
        for separator, count in counts.items()
        if count == most
    )
    message = (
        f"cannot tell the CSV separator: the header line holds {names} "
        f"{most} time(s) each, outside quotes, and the next line does not settle it"
    )
    raise SeparatorError(message)


def _records_text(lines: Iterator[str], peeked: list[str]) -> str | None:
    """Read the next non-blank record's text (its quotes closed), keeping its lines."""
    text = ""
    for line in lines:
        peeked.append(line)
        if text or line.strip("\r\n"):
            text += line
            if text.count('"') % 2 == 0:
                return text
    return text or None


class CsvSource:
    """Rows of one CSV member, decoded one way from its first byte to its last.

    Pass the `decoding` a whole-member scan decided (`scan_member`). Without one,
    as at discovery where only a head sample is read, the first `buffer_bytes`
    decide once the first row is asked for. Nothing is read before the first row,
    so a damaged member fails where the caller reads rows.

    NUL characters are dropped after decoding, in every encoding: no CSV value
    means one, and warehouses such as PostgreSQL refuse it in text. The separator
    is read from the header line (`separator_of`).
    """

    def __init__(
        self,
        binary: IO[bytes],
        buffer_bytes: int = 1024 * 1024,
        decoding: Decoding | None = None,
    ) -> None:
        self.decoding = decoding
        """How the member is decoded; None until a head sample decides."""
        self._bytes = _MemberBytes(binary)
        self._buffer_bytes = buffer_bytes
        self._counts_before = _REPLACEMENTS.counts()
        self._replaced = False
        self.nul_lines = 0
        """How many lines held NUL characters."""
        self.first_nul_line: int | None = None
        self.first_replaced_line: int | None = None
        self._reader: Iterator[list[str]] | None = None

    @property
    def rows(self) -> Iterator[list[str]]:
        """The CSV's rows; a blank line is an empty list.

        Before the first row is read, an iterator that starts reading when asked.
        """
        return self._reader if self._reader is not None else self._rows_once_started()

    def _rows_once_started(self) -> Iterator[list[str]]:
        yield from self._start()

    def _start(self) -> Iterator[list[str]]:
        if self._reader is not None:
            return self._reader
        _register_error_handlers()
        if self.decoding is None:
            head = self._bytes.binary.read(self._buffer_bytes)
            self.decoding = decoding_of(head, whole=len(head) < self._buffer_bytes)
            self._bytes.head = head
            self._counts_before = _REPLACEMENTS.counts()  # the decision's own
        self._bytes.drop_utf8_bom = self.decoding is CP1252
        text = io.TextIOWrapper(
            io.BufferedReader(self._bytes, self._buffer_bytes),
            encoding=self.decoding.encoding,
            errors=self.decoding.errors,
            newline="",
        )
        lines = self._lines(text)
        peeked: list[str] = []
        header = _records_text(lines, peeked) or ""
        try:
            separator = separator_of(header)
        except SeparatorError:
            separator = separator_of(header, _records_text(lines, peeked) or "")
        self._reader = csv.reader(itertools.chain(peeked, lines), delimiter=separator)
        return self._reader

    def _lines(self, text: IO[str]) -> Iterator[str]:
        """Give the text's lines, refusing one past the limit before reading more."""
        limit = field_limit()
        replacements = _REPLACEMENTS
        seen = replacements.uses
        number = 0
        while line := text.readline(limit + 1):
            number += 1
            if len(line) > limit and not line.endswith(("\n", "\r")):
                message = (
                    f"a line is longer than the {FIELD_LIMIT_SETTING} setting "
                    f"({limit} characters); raise it if the file is genuine"
                )
                raise FieldTooLargeError(message)
            if "\x00" in line:
                line = line.replace("\x00", "")
                self.nul_lines += 1
                if self.first_nul_line is None:
                    self.first_nul_line = number
            if (
                replacements.uses != seen
                and self.first_replaced_line is None
                and "\ufffd" in line
            ):
                self.first_replaced_line = number  # decoded ahead: maybe a later line
            yield line

    def header(self) -> list[str] | None:
        """Read the first non-blank row, leaving `rows` at the first data row."""
        return next((row for row in self._start() if row), None)

    def evidence(self) -> tuple[int, int]:
        """Give the non-ASCII bytes read and, of them, the stray ones."""
        _, stray_before = self._counts_before
        return self._bytes.non_ascii, _REPLACEMENTS.stray_bytes - stray_before

    def replacements(self) -> int:
        """Give how many damaged byte sequences were replaced by U+FFFD."""
        return _REPLACEMENTS.uses - self._counts_before[0]

    def repairs(self) -> list[str]:
        """Say what reading had to repair, for a warning that names the file."""
        notes = []
        if self.first_nul_line is not None:
            notes.append(
                f"NUL characters were dropped from {self.nul_lines} line(s), "
                f"the first line {self.first_nul_line}"
            )
        if self.decoding is not None and self.decoding.note:
            notes.append(self.decoding.note)
        if replaced := self.replacements():
            where = (
                f", the first on line {self.first_replaced_line}"
                if self.first_replaced_line is not None
                else ""
            )
            notes.append(
                f"{replaced} damaged byte sequence(s) that are not UTF-8 were "
                f"replaced by U+FFFD{where}"
            )
        return notes


@dataclasses.dataclass(frozen=True)
class MemberScan:
    """What one pass over a whole member found, for reading it again for records."""

    decoding: Decoding
    header: list[str]
    """The header's cells as written (empty for a member without one)."""
    names: list[str]
    """`column_names(header, earlier)`."""
    types: list[ColumnType]
    """Per column: the narrowest type, from the start type on, holding every value."""
    float_kept: list[bool] = dataclasses.field(default_factory=list)
    """Per column: no integer too long for a 64-bit float (see `rescanned_type`)."""


def scan_member(
    open_member: Callable[[], IO[bytes]],
    start_types: Mapping[str, ColumnType] | None = None,
    pinned: Mapping[str, ColumnType] | None = None,
    earlier: EarlierNames | None = None,
) -> MemberScan:
    """Decide a member's decoding and its columns' types from all of its bytes.

    `open_member` opens the member from its start (it is called again for a file
    that is not UTF-8 at heart: see `is_utf8_at_heart`). Columns widen from
    `start_types` (by column name; NULL for others); `pinned` columns keep their
    type and are not scanned. Rows equal to the header are not data: not scanned.
    `earlier` holds the names the table already has (see `column_names`).
    """
    with open_member() as binary:
        bom = binary.read(2)
    if bom in _UTF16_BOMS:
        return _scan(open_member, UTF_16, start_types, pinned, earlier)[0]
    scan, source = _scan(open_member, UTF_8, start_types, pinned, earlier)
    if is_utf8_at_heart(*source.evidence()):
        return scan
    return _scan(open_member, CP1252, start_types, pinned, earlier)[0]


def _scan(
    open_member: Callable[[], IO[bytes]],
    decoding: Decoding,
    start_types: Mapping[str, ColumnType] | None,
    pinned: Mapping[str, ColumnType] | None,
    earlier: EarlierNames | None,
) -> tuple[MemberScan, CsvSource]:
    fixed = pinned or {}
    with open_member() as binary:
        source = CsvSource(binary, decoding=decoding)
        header = source.header() or []
        names = column_names(header, earlier)
        start = [
            ColumnType.STRING
            if name in fixed
            else (start_types or {}).get(name, ColumnType.NULL)
            for name in names
        ]
        float_kept = [True] * len(names)
        scanned = scan_types(
            source.rows, len(names), start, skip=header, float_kept=float_kept
        )
    types = [fixed.get(name, found) for name, found in zip(names, scanned, strict=True)]
    return MemberScan(decoding, header, names, types, float_kept), source


def rescan(
    found: MemberScan,
    start_types: Mapping[str, ColumnType] | None = None,
    pinned: Mapping[str, ColumnType] | None = None,
    earlier: EarlierNames | None = None,
) -> MemberScan:
    """Give what `scan_member` with these arguments gives, from a scan of the bytes.

    `found` is a scan of the same bytes with no start types and no pins (as
    discovery makes): a scan's types are per position, and one from a start type
    is the scan from NULL widened to it (`rescanned_type`), so no byte is read
    again. The decoding and the header (so the rows skipped as it) are the same.
    """
    fixed = pinned or {}
    names = column_names(found.header, earlier)
    types = [
        fixed[name]
        if name in fixed
        else rescanned_type(
            (start_types or {}).get(name, ColumnType.NULL), column_type, float_kept=kept
        )
        for name, column_type, kept in zip(
            names, found.types, found.float_kept, strict=True
        )
    ]
    return MemberScan(found.decoding, found.header, names, types, found.float_kept)


SCAN_RULES_VERSION = 1
"""Stored with a scan (`scan_to_json`): a tap whose scan rules differ reads none back.
Raise it with any change to what `scan_member` decides."""
_DECODINGS = {decoding.encoding: decoding for decoding in (UTF_8, UTF_16, CP1252)}


def scan_to_json(scan: MemberScan) -> dict[str, Any]:
    """Give a scan as JSON, with the rules version and the field limit it held to."""
    return {
        "rules": SCAN_RULES_VERSION,
        "field_limit": field_limit(),
        "encoding": scan.decoding.encoding,
        "header": scan.header,
        "types": [column_type.value for column_type in scan.types],
        "float_kept": scan.float_kept,
    }


def scan_of_json(data: Any) -> MemberScan | None:
    """Read a scan back; None for one of other rules, another field limit, or odd.

    A field limit other than this process's could have failed the scan: it would
    fail this sync's scan too, before any record, so that scan is made again.
    """
    try:
        if data["rules"] != SCAN_RULES_VERSION or data["field_limit"] != field_limit():
            return None
        header, float_kept = data["header"], data["float_kept"]
        types = [ColumnType(value) for value in data["types"]]
        decoding = _DECODINGS[data["encoding"]]
    except (KeyError, TypeError, ValueError):
        return None
    if not (
        isinstance(header, list)
        and all(isinstance(cell, str) for cell in header)
        and isinstance(float_kept, list)
        and all(isinstance(kept, bool) for kept in float_kept)
        and len(types) == len(float_kept) == len(header)
    ):
        return None
    return MemberScan(decoding, header, column_names(header), types, float_kept)


_ROWS_NAMED = 20
"""Rows a warning names at most."""


class RecordBuilder:
    """Turns one member's data rows into records: the per-row path, kept lean.

    Converters are chosen once per column and text columns are not touched. A value
    that does not fit its column's type leaves the column null, goes to
    `_sdc_unfit_values` as written, and is reported through `on_unfit(column name,
    row number, value)`. The columns named in `proven`, whose every value a scan
    found to fit their type, are converted without checks. A row equal to the
    `header` (files joined end to end repeat it) is no data: it is skipped, keeping
    its number, and named by `repairs`.
    """

    def __init__(
        self,
        names: Sequence[str],
        types: Sequence[ColumnType],
        metadata: Mapping[str, Any],
        on_unfit: Callable[[str, int, str], None] | None = None,
        proven: Collection[str] = (),
        *,
        header: Sequence[str] = (),
    ) -> None:
        self.names = list(names)
        self.on_unfit = on_unfit
        self.header = list(header)
        self.header_rows: list[int] = []
        """Numbers of the rows skipped as equal to the header."""
        converters = [
            (PROVEN_CONVERTERS if name in proven else CONVERTERS)[column_type]
            for name, column_type in zip(self.names, types, strict=True)
        ]
        self._typed = [
            (position, convert)
            for position, convert in enumerate(converters)
            if convert is not CONVERTERS[ColumnType.STRING]
        ]
        self._blank = dict.fromkeys(self.names)
        self._blank.update(metadata)
        self._blank[EXTRA_VALUES] = None
        self._blank[UNFIT_VALUES] = None

    def records(self, rows: Iterable[list[str]]) -> Iterator[dict[str, Any]]:
        """Give a record per non-blank row, numbered from 1; `rows` follow a header."""
        names, typed, blank = self.names, self._typed, self._blank
        header = self.header or None
        width = len(names)
        row_number = 0
        for row in rows:
            if not row:
                continue
            row_number += 1
            if row == header:
                self.header_rows.append(row_number)
                continue
            record = blank.copy()
            record[ROW_NUMBER] = row_number
            values = [value or None for value in row]
            try:
                for position, convert in typed:
                    value = values[position]
                    if value is not None:
                        values[position] = convert(value)
            except (ValueError, IndexError):  # a value that does not fit, a short row
                values, record[UNFIT_VALUES] = self._fitting_values(row, row_number)
            record.update(zip(names, values, strict=False))
            if len(row) > width:
                record[EXTRA_VALUES] = row[width:]
            yield record

    def repairs(self) -> list[str]:
        """Say which rows were skipped as the header, for a warning naming the file."""
        if not self.header_rows:
            return []
        shown = ", ".join(map(str, self.header_rows[:_ROWS_NAMED]))
        more = " and more" if len(self.header_rows) > _ROWS_NAMED else ""
        return [
            f"{len(self.header_rows)} row(s) equal to the header were skipped, "
            f"not loaded as data: row(s) {shown}{more}"
        ]

    def _fitting_values(
        self, row: list[str], row_number: int
    ) -> tuple[list[Any], dict[str, str] | None]:
        values: list[Any] = [value or None for value in row]
        unfit: dict[str, str] = {}
        for position, convert in self._typed:
            if position >= len(row):
                break
            value = row[position]
            if not value:
                continue
            try:
                values[position] = convert(value)
            except ValueError:
                values[position] = None
                name = self.names[position]
                unfit[name] = value
                if self.on_unfit is not None:
                    self.on_unfit(name, row_number, value)
        return values, unfit or None

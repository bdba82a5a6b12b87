"""Reading export CSV members: one decoding per file, type scans and records.

Names come from `tap_oktopost.names` and types from `tap_oktopost.column_types`;
both are re-exported here so that callers need one import.

A sync reads each member twice from local disk: `scan_member` decides the text
encoding and the narrowest types holding every value, then `CsvSource` with that
decoding and a `RecordBuilder` with the settled types make the records.
"""

from __future__ import annotations

import codecs
import copy
import csv
import dataclasses
import io
import zipfile
import zlib
from typing import IO, TYPE_CHECKING, Any

from tap_oktopost.column_types import (
    CONVERTERS,
    PROVEN_CONVERTERS,
    TYPE_NAMES,
    ColumnType,
    classify,
    column_type_of,
    property_schema,
    scan_types,
    widen,
)
from tap_oktopost.names import (
    EXPORT_ID,
    EXPORT_RUN_AT,
    EXTRA_VALUES,
    ROW_NUMBER,
    SOURCE_FILE,
    SYNC_TIMESTAMP,
    UNFIT_VALUES,
    EarlierNames,
    column_names,
    table_name,
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
    "CONVERTERS",
    "DEFAULT_KEY",
    "EXPORT_ID",
    "EXPORT_RUN_AT",
    "EXTRA_VALUES",
    "METADATA_PROPERTIES",
    "READ_ERRORS",
    "ROW_NUMBER",
    "SOURCE_FILE",
    "SYNC_TIMESTAMP",
    "TYPE_NAMES",
    "UNFIT_VALUES",
    "ColumnType",
    "CsvSource",
    "Decoding",
    "EarlierNames",
    "MemberScan",
    "RecordBuilder",
    "TableShape",
    "classify",
    "column_names",
    "column_type_of",
    "decoding_of",
    "property_schema",
    "scan_member",
    "scan_types",
    "table_name",
    "widen",
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


class TableShape:
    """The union of one table's columns over every file and export it appears in."""

    def __init__(self) -> None:
        self.columns: dict[str, tuple[ColumnType, str]] = {}

    def add(
        self,
        header: list[str],
        sample_rows: Iterable[list[str]],
        earlier: EarlierNames | None = None,
    ) -> None:
        """Add one file's columns, typed from its sample rows."""
        names = column_names(header, earlier)
        types = scan_types(sample_rows, len(names))
        for name, cell, column_type in zip(names, header, types, strict=True):
            known_type, known_cell = self.columns.get(name, (ColumnType.NULL, cell))
            self.columns[name] = (widen(known_type, column_type), known_cell)

    def json_schema(self, pinned: dict[str, str] | None = None) -> dict[str, Any]:
        """Give the table's schema: the columns every row carries, then the CSV's.

        `pinned` types (column name -> type name) replace inferred ones.
        """
        properties = copy.deepcopy(METADATA_PROPERTIES)
        for name, (column_type, cell) in self.columns.items():
            chosen = ColumnType((pinned or {}).get(name, column_type.value))
            properties[name] = property_schema(chosen, cell.lstrip("\ufeff"))
        return {"type": "object", "properties": properties}


DEFAULT_MAX_FIELD_CHARACTERS = 8 * 1024 * 1024
"""Longest CSV field and line read: a long post's text is kilobytes, and a hostile
file could otherwise hold one field of gigabytes in memory."""
FIELD_LIMIT_SETTING = "max_csv_field_characters"
_line_limit = DEFAULT_MAX_FIELD_CHARACTERS


def limit_field_size(characters: int) -> None:
    """Cap CSV fields and physical lines, for every file this process reads.

    The csv module's own field cap is process-wide (its default, 128 KiB, is too
    small for long posts), so the line cap is too.
    """
    global _line_limit  # noqa: PLW0603 - one setting for the process, as csv's
    _line_limit = characters
    csv.field_size_limit(characters)


limit_field_size(DEFAULT_MAX_FIELD_CHARACTERS)


class FieldTooLargeError(csv.Error):
    """A field or line past the max_csv_field_characters setting."""


def _bounded_lines(text: IO[str], limit: int) -> Iterator[str]:
    """Give the text's lines, refusing one longer than `limit` before reading more."""
    while line := text.readline(limit + 1):
        if len(line) > limit and not line.endswith(("\n", "\r")):
            message = (
                f"a line is longer than the {FIELD_LIMIT_SETTING} setting ({limit} "
                "characters); raise it if the file is genuine"
            )
            raise FieldTooLargeError(message)
        yield line


def read_error_text(error: Exception) -> str:
    """Say what broke a file's reading, naming the setting for an oversized field."""
    if isinstance(error, FieldTooLargeError):
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
    """Replace what does not decode past a head sample, counting how often."""

    name = "tap-oktopost-replace"

    def __init__(self) -> None:
        self.uses = 0

    def __call__(self, error: UnicodeError) -> tuple[str, int]:
        if not isinstance(error, UnicodeDecodeError):
            raise error
        self.uses += 1
        return "\ufffd", error.end


_LATIN1_ERRORS = "tap-oktopost-undefined-as-latin1"
codecs.register_error(_LATIN1_ERRORS, _undefined_as_latin1)
_REPLACEMENTS = _Replacements()
codecs.register_error(_Replacements.name, _REPLACEMENTS)


@dataclasses.dataclass(frozen=True)
class Decoding:
    """How a whole member's bytes become text; `note` says what was repaired."""

    encoding: str
    errors: str = "strict"
    note: str | None = None


UTF_8 = Decoding("utf-8-sig")
UTF_16 = Decoding("utf-16")
CP1252 = Decoding(
    "cp1252",
    _LATIN1_ERRORS,
    "text that is not UTF-8 was read as Windows-1252 (cp1252)",
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decoding_of(head: bytes, *, whole: bool) -> Decoding:
    """Decide a member's decoding from its first bytes (`whole`: all of them).

    A UTF-16 BOM decides; else the bytes are UTF-8 when they all decode as such (a
    character cut at the end of a head sample is allowed), else cp1252.
    """
    if head[:2] in _UTF16_BOMS:
        return UTF_16
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError:
        return CP1252
    return UTF_8


class _MemberBytes(io.RawIOBase):
    """A member's bytes, its first few put back, with NUL bytes dropped.

    NUL is no character a CSV value means, and warehouses such as PostgreSQL refuse
    it in text. A UTF-8 BOM in front of text read as cp1252 is dropped too: it
    would otherwise become "ï»¿" in the first column's name.
    """

    def __init__(self, binary: IO[bytes], head: bytes, *, drop_nul: bool) -> None:
        self.binary = binary
        self.head = head
        self.drop_nul = drop_nul
        self.dropped_nul = False
        self.drop_utf8_bom = False
        self.at_start = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        while True:
            data = self.head[:size] or self.binary.read(size)
            self.head = self.head[size:]
            if not data:
                return 0
            if self.at_start:
                self.at_start = False
                if self.drop_utf8_bom:
                    data = data.removeprefix(codecs.BOM_UTF8)
            if self.drop_nul and b"\x00" in data:
                data = data.replace(b"\x00", b"")
                self.dropped_nul = True
            if data:
                buffer[: len(data)] = data
                return len(data)


class CsvSource:
    """Rows of one CSV member, decoded one way from its first byte to its last.

    Pass the `decoding` a whole-member scan decided (`scan_member`). Without one,
    as at discovery where only a head sample is read, the first `buffer_bytes`
    decide once the first row is asked for, and bytes further on that do not
    decode are replaced, with a note. Nothing is read before the first row, so
    a damaged member fails where the caller reads rows.
    """

    def __init__(
        self,
        binary: IO[bytes],
        buffer_bytes: int = 1024 * 1024,
        decoding: Decoding | None = None,
    ) -> None:
        self.decoding = decoding
        """How the member is decoded; None until a head sample decides."""
        self._bytes = _MemberBytes(binary, b"", drop_nul=decoding is not UTF_16)
        self._buffer_bytes = buffer_bytes
        self._replacements_before = _REPLACEMENTS.uses
        self.rows: Iterator[list[str]] = (
            self._reader(decoding, decoding.errors)
            if decoding is not None
            else self._rows_decided_by_head()
        )
        """The CSV's rows; a blank line is an empty list."""

    def _reader(self, decoding: Decoding, errors: str) -> Iterator[list[str]]:
        self._bytes.drop_utf8_bom = decoding is CP1252
        text = io.TextIOWrapper(
            io.BufferedReader(self._bytes, self._buffer_bytes),
            encoding=decoding.encoding,
            errors=errors,
            newline="",
        )
        return csv.reader(_bounded_lines(text, _line_limit))

    def _rows_decided_by_head(self) -> Iterator[list[str]]:
        head = self._bytes.binary.read(self._buffer_bytes)
        self.decoding = decoding_of(head, whole=len(head) < self._buffer_bytes)
        self._bytes.head = head
        self._bytes.drop_nul = self.decoding is not UTF_16
        errors = CP1252.errors if self.decoding is CP1252 else _Replacements.name
        yield from self._reader(self.decoding, errors)

    def header(self) -> list[str] | None:
        """Read the first non-blank row, leaving `rows` at the first data row."""
        return next((row for row in self.rows if row), None)

    def repairs(self) -> list[str]:
        """Say what reading had to repair, for a warning that names the file."""
        notes = []
        if self._bytes.dropped_nul:
            notes.append("NUL bytes were dropped")
        if self.decoding is not None and self.decoding.note:
            notes.append(self.decoding.note)
        if _REPLACEMENTS.uses > self._replacements_before:
            notes.append(
                "bytes that are not UTF-8 after the first ones were replaced by U+FFFD"
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


def scan_member(
    open_member: Callable[[], IO[bytes]],
    start_types: Mapping[str, ColumnType] | None = None,
    pinned: Mapping[str, ColumnType] | None = None,
    earlier: EarlierNames | None = None,
) -> MemberScan:
    """Decide a member's decoding and its columns' types from all of its bytes.

    `open_member` opens the member from its start (it is called again when the
    bytes turn out not to be UTF-8). Columns widen from `start_types` (by column
    name; NULL for others); `pinned` columns keep their type and are not scanned.
    `earlier` holds the names the table already has (see `column_names`).
    """
    with open_member() as binary:
        bom = binary.read(2)
    decoding = UTF_16 if bom in _UTF16_BOMS else UTF_8
    try:
        return _scan(open_member, decoding, start_types, pinned, earlier)
    except UnicodeDecodeError:
        if decoding is UTF_16:
            raise
    return _scan(open_member, CP1252, start_types, pinned, earlier)


def _scan(
    open_member: Callable[[], IO[bytes]],
    decoding: Decoding,
    start_types: Mapping[str, ColumnType] | None,
    pinned: Mapping[str, ColumnType] | None,
    earlier: EarlierNames | None,
) -> MemberScan:
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
        scanned = scan_types(source.rows, len(names), start)
    types = [fixed.get(name, found) for name, found in zip(names, scanned, strict=True)]
    return MemberScan(decoding, header, names, types)


class RecordBuilder:
    """Turns one member's data rows into records: the per-row path, kept lean.

    Converters are chosen once per column and text columns are not touched. A value
    that does not fit its column's type leaves the column null, goes to
    `_sdc_unfit_values` as written, and is reported through `on_unfit(column name,
    row number, value)`. The columns named in `proven`, whose every value a scan
    found to fit their type, are converted without checks.
    """

    def __init__(
        self,
        names: Sequence[str],
        types: Sequence[ColumnType],
        metadata: Mapping[str, Any],
        on_unfit: Callable[[str, int, str], None] | None = None,
        proven: Collection[str] = (),
    ) -> None:
        self.names = list(names)
        self.on_unfit = on_unfit
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
        width = len(names)
        row_number = 0
        for row in rows:
            if not row:
                continue
            row_number += 1
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

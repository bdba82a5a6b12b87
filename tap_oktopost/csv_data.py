"""Reading export CSV files: table and column names, type inference, value parsing.

The SDK does not parse strings, so every value leaves here already JSON-native and
matching the column's JSON schema. Converters are chosen once per column so that the
per-value cost stays a dictionary lookup or a regular-expression match.
"""

from __future__ import annotations

import codecs
import copy
import csv
import datetime
import enum
import functools
import io
import re
import unicodedata
import zipfile
import zlib
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

# Columns every CSV row carries besides its own; a header cell that cleans to one of
# these names gets a numeric suffix instead.
EXPORT_ID = "export_id"
SYNC_TIMESTAMP = "sync_timestamp"
SOURCE_FILE = "_sdc_source_file"
ROW_NUMBER = "_sdc_row_number"
EXPORT_RUN_AT = "_sdc_export_run_at"
EXTRA_VALUES = "_sdc_extra"
UNFIT_VALUES = "_sdc_unfit_values"
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
        "description": "Column -> text of a value that does not fit the column's type",
    },
}

_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[-_ .]+|$)")
_NOT_NAME_CHARS = re.compile(r"[^a-z0-9]+")


def snake_case(text: str) -> str:
    """Make a name every warehouse accepts unquoted-alike: ASCII, lower case, `_`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_NAME_CHARS.sub("_", ascii_text.lower()).strip("_")


def table_name(member_path: str) -> str | None:
    """Name the table for an archive member; None for folders and non-CSV files.

    The run date Oktopost puts in front of file names is dropped so that every run of
    an export lands in the same table.
    """
    base_name = member_path.replace("\\", "/").rsplit("/", 1)[-1]
    if not base_name.lower().endswith(".csv"):
        return None
    stem = base_name[: -len(".csv")]
    return snake_case(_DATE_PREFIX.sub("", stem)) or snake_case(stem) or None


def column_names(header: list[str]) -> list[str]:
    """Clean header cells into unique column names, in header order."""
    taken = set(METADATA_PROPERTIES)
    names = []
    for position, cell in enumerate(header, start=1):
        base = snake_case(cell.lstrip("\ufeff")) or f"column_{position}"
        name, suffix = base, 1
        while name in taken:
            suffix += 1
            name = f"{base}_{suffix}"
        taken.add(name)
        names.append(name)
    return names


class ColumnType(enum.Enum):
    """What a column's values have shown themselves to be; NULL means none seen."""

    NULL = "null"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    DATE = "date"
    DATE_TIME = "date-time"
    STRING = "string"


# Up to 18 digits, so that every integer fits a warehouse's 64-bit integer column.
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[-+][0-9]{2}(?::?[0-9]{2})?)?"
)
_NAIVE_DATE_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]((?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])"
)
_BOOLEANS = {"true": True, "false": False}


TYPE_NAMES = [t.value for t in ColumnType if t is not ColumnType.NULL]
"""The types a column can be given, by name."""


def _parse_integer(value: str) -> int:
    if _INTEGER.fullmatch(value) is None:
        raise ValueError(value)
    return int(value)


def _parse_number(value: str) -> Decimal:
    if _NUMBER.fullmatch(value) is None:
        raise ValueError(value)
    return Decimal(value)


def _parse_boolean(value: str) -> bool:
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise ValueError(value) from None


@functools.lru_cache(maxsize=4096)
def _is_date(text: str) -> bool:
    """Check a calendar date once: exports repeat the same few dates."""
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _parse_date(value: str) -> str:
    if _DATE.fullmatch(value) is None or not _is_date(value):
        raise ValueError(value)
    return value


def _parse_date_time(value: str) -> str:
    """Give RFC 3339 with an offset; a value without one is taken as UTC."""
    naive = _NAIVE_DATE_TIME.fullmatch(value)
    if naive is not None and _is_date(naive.group(1)):
        return f"{naive.group(1)}T{naive.group(2)}+00:00"  # Oktopost's usual shape
    if _DATE.fullmatch(value) is not None and _is_date(value):
        return f"{value}T00:00:00+00:00"  # a date in a column widened to date-time
    if _DATE_TIME.fullmatch(value) is None:
        raise ValueError(value)
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.isoformat()


def _keep_string(value: str) -> str:
    return value


CONVERTERS: dict[ColumnType, Callable[[str], Any]] = {
    ColumnType.NULL: _keep_string,
    ColumnType.BOOLEAN: _parse_boolean,
    ColumnType.INTEGER: _parse_integer,
    ColumnType.NUMBER: _parse_number,
    ColumnType.DATE: _parse_date,
    ColumnType.DATE_TIME: _parse_date_time,
    ColumnType.STRING: _keep_string,
}
"""Parse a non-empty cell; raise ValueError when it does not fit the type."""

_NARROWEST_FIRST = (
    ColumnType.BOOLEAN,
    ColumnType.INTEGER,
    ColumnType.NUMBER,
    ColumnType.DATE,
    ColumnType.DATE_TIME,
)


def classify(value: str) -> ColumnType:
    """Give the narrowest type of one non-empty cell."""
    for column_type in _NARROWEST_FIRST:
        try:
            CONVERTERS[column_type](value)
        except ValueError:
            continue
        return column_type
    return ColumnType.STRING


_WIDER_PAIRS = {
    frozenset((ColumnType.INTEGER, ColumnType.NUMBER)): ColumnType.NUMBER,
    frozenset((ColumnType.DATE, ColumnType.DATE_TIME)): ColumnType.DATE_TIME,
}


def widen(first: ColumnType, second: ColumnType) -> ColumnType:
    """Give the narrowest type that holds values of both types."""
    if first is second or second is ColumnType.NULL:
        return first
    if first is ColumnType.NULL:
        return second
    return _WIDER_PAIRS.get(frozenset((first, second)), ColumnType.STRING)


def infer_types(rows: Iterable[list[str]], width: int) -> list[ColumnType]:
    """Infer each of the first `width` columns' types from sample rows."""
    types = [ColumnType.NULL] * width
    for row in rows:
        for position, value in enumerate(row[:width]):
            if value:
                current = types[position]
                if current is not ColumnType.STRING:
                    try:
                        CONVERTERS[current](value)
                    except ValueError:
                        types[position] = widen(current, classify(value))
                    else:
                        if current is ColumnType.NULL:
                            types[position] = classify(value)
    return types


def property_schema(column_type: ColumnType, header_cell: str) -> dict[str, Any]:
    """Give a nullable JSON schema for a column, keeping the original header."""
    if column_type in {ColumnType.DATE, ColumnType.DATE_TIME}:
        schema: dict[str, Any] = {
            "type": ["string", "null"],
            "format": column_type.value,
        }
    elif column_type in {ColumnType.NULL, ColumnType.STRING}:
        schema = {"type": ["string", "null"]}
    else:
        schema = {"type": [column_type.value, "null"]}
    schema["description"] = header_cell
    return schema


def column_type_of(schema: dict[str, Any]) -> ColumnType:
    """Read a column's type back from its JSON schema (for example from a catalog)."""
    json_types = schema.get("type", [])
    if isinstance(json_types, str):
        json_types = [json_types]
    non_null = [json_type for json_type in json_types if json_type != "null"]
    if non_null == ["string"]:
        return {"date": ColumnType.DATE, "date-time": ColumnType.DATE_TIME}.get(
            schema.get("format", ""), ColumnType.STRING
        )
    if len(non_null) == 1 and non_null[0] in {"integer", "number", "boolean"}:
        return ColumnType(non_null[0])
    return ColumnType.STRING


class TableShape:
    """The union of one table's columns over every file and export it appears in."""

    def __init__(self) -> None:
        self.columns: dict[str, tuple[ColumnType, str]] = {}

    def add(self, header: list[str], sample_rows: Iterable[list[str]]) -> None:
        """Add one file's columns, typed from its sample rows."""
        names = column_names(header)
        types = infer_types(sample_rows, len(names))
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


# A field may be large (a long post's text); the csv module's default cap is 128 KiB.
csv.field_size_limit(2**31 - 1)

READ_ERRORS = (csv.Error, zipfile.BadZipFile, zlib.error, EOFError, OSError)
"""What reading a damaged or odd CSV member can raise."""

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class _Cp1252Fallback:
    """Decode the bytes that are not UTF-8 as Windows-1252, counting how often.

    Registered as a codec error handler, so valid UTF-8 in the same file stays as it
    is. The five bytes cp1252 leaves undefined are read as Latin-1: nothing is lost.
    """

    name = "tap-oktopost-cp1252"

    def __init__(self) -> None:
        self.uses = 0

    def __call__(self, error: UnicodeError) -> tuple[str, int]:
        if not isinstance(error, UnicodeDecodeError):
            raise error
        self.uses += 1
        text = "".join(
            bytes([byte]).decode("cp1252", errors="ignore") or chr(byte)
            for byte in error.object[error.start : error.end]
        )
        return text, error.end


_CP1252_FALLBACK = _Cp1252Fallback()
codecs.register_error(_Cp1252Fallback.name, _CP1252_FALLBACK)


class _MemberBytes(io.RawIOBase):
    """A member's bytes, its first few put back, with NUL bytes dropped.

    NUL is no character a CSV value means, and warehouses such as PostgreSQL refuse
    it in text.
    """

    def __init__(self, binary: IO[bytes], head: bytes, *, drop_nul: bool) -> None:
        self.binary = binary
        self.head = head
        self.drop_nul = drop_nul
        self.dropped_nul = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            data = self.head or self.binary.read(len(buffer))
            self.head = b""
            if self.drop_nul and b"\x00" in data:
                data = data.replace(b"\x00", b"")
                self.dropped_nul = True
                if not data:
                    continue
            buffer[: len(data)] = data
            return len(data)


class CsvSource:
    """Rows of one CSV member, whatever its encoding.

    UTF-8 with or without a BOM, UTF-16 with a BOM, or text that is not UTF-8 (read
    as cp1252, with a note).
    """

    def __init__(self, binary: IO[bytes], buffer_bytes: int = 1024 * 1024) -> None:
        head = binary.read(4)
        utf16 = head[:2] in _UTF16_BOMS
        self._bytes = _MemberBytes(binary, head, drop_nul=not utf16)
        self._fallbacks_before = _CP1252_FALLBACK.uses
        text = io.TextIOWrapper(
            io.BufferedReader(self._bytes, buffer_bytes),
            encoding="utf-16" if utf16 else "utf-8-sig",
            errors=_Cp1252Fallback.name,
            newline="",
        )
        self.rows: Iterator[list[str]] = csv.reader(text)
        """The CSV's rows; a blank line is an empty list."""

    def repairs(self) -> list[str]:
        """Say what reading had to repair, for a warning that names the file."""
        notes = []
        if self._bytes.dropped_nul:
            notes.append("NUL bytes were dropped")
        if _CP1252_FALLBACK.uses > self._fallbacks_before:
            notes.append("text that is not UTF-8 was read as Windows-1252 (cp1252)")
        return notes

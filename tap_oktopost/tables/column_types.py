"""Column types of export CSV files: inference, whole-file scans and value parsing.

The SDK does not parse strings, so every value leaves here already JSON-native and
matching the column's JSON schema. A converter gives back exactly what the text
says: a value it would have to round, clip or re-sign does not fit the type.
"""

from __future__ import annotations

import collections
import datetime
import enum
import functools
import itertools
import operator
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence


class ColumnType(enum.Enum):
    """What a column's values have shown themselves to be; NULL means none seen."""

    NULL = "null"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    DATE = "date"
    DATE_TIME = "date-time"
    STRING = "string"


TYPE_NAMES = [t.value for t in ColumnType if t is not ColumnType.NULL]
"""The types a column can be given, by name."""

INTEGER_MIN = -(2**63)
INTEGER_MAX = 2**63 - 1
"""A warehouse's 64-bit integer column holds these; larger integers are text."""

FLOAT_DIGITS = 15
"""Significant digits any decimal keeps through a 64-bit float and back (DBL_DIG):
target-snowflake and DuckDB store a `number` column as one, so an inferred number
has no more."""

_LONGEST_INTEGER = len(str(INTEGER_MIN))

# Value patterns, written so that "\n" or the end of the text ends a value: a whole
# column is checked with one match over its values joined by newlines. A number is
# written in plain decimal notation (sign, digits, one point): that is how a JSON
# number of the value is written again, so the text reaches the warehouse as it was.
# Exponents, `+`, `.5`, `5.`, leading zeros and separators are text. Negative zero
# is text too: a number column would lose its sign.
_NEGATIVE_ZERO = r"0(?:\.0+)?(?:\n|\Z)"
_INTEGER_TEXT = r"(?:0|-?[1-9][0-9]{0,18})"
_NUMBER_TEXT = rf"(?:-(?!{_NEGATIVE_ZERO}))?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
# A number a column is typed by: not below 1e-6, which a Decimal writes with an
# exponent (`0.0000001` as `1E-7`); and see `_float_keeps`.
_INFERRED_NUMBER_TEXT = rf"(?!-?0\.0{{6}}[0-9]){_NUMBER_TEXT}"
_DATE_TEXT = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # and a calendar check
_TIME_TEXT = r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
_OFFSET_TEXT = r"Z|[-+](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?"

_INTEGER = re.compile(_INTEGER_TEXT)
_SHORT_INTEGER = re.compile(r"0|-?[1-9][0-9]{0,17}")  # always in range
_NUMBER = re.compile(_NUMBER_TEXT)
_INFERRED_NUMBER = re.compile(_INFERRED_NUMBER_TEXT)
_DATE = re.compile(_DATE_TEXT)
_DATE_TIME = re.compile(
    rf"({_DATE_TEXT})[T ]((?:[01][0-9]|2[0-3]):[0-5][0-9])"
    r"(:[0-5][0-9](?:\.[0-9]{1,6})?)?"
    rf"({_OFFSET_TEXT})?"
)
_BOOLEANS = {"true": True, "false": False}
_DATE_PART = operator.itemgetter(slice(0, 10))


def _column_pattern(value_pattern: str) -> re.Pattern[str]:
    """Match a column's values joined by newlines, empty values included."""
    return re.compile(rf"(?:{value_pattern})?(?:\n(?:{value_pattern})?)*")


_INTEGER_COLUMN = _column_pattern(_INTEGER_TEXT)
_INFERRED_NUMBER_COLUMN = _column_pattern(_INFERRED_NUMBER_TEXT)
_DATE_COLUMN = _column_pattern(_DATE_TEXT)
_DATE_TIME_COLUMN = _column_pattern(
    rf"{_DATE_TEXT}(?:[T ]{_TIME_TEXT}(?:{_OFFSET_TEXT})?)?"  # date-time or date
)


@functools.lru_cache(maxsize=4096)
def _is_date(text: str) -> bool:
    """Check a calendar date once: exports repeat the same few dates."""
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _parse_integer(value: str) -> int:
    if _SHORT_INTEGER.fullmatch(value) is not None:
        return int(value)
    if _INTEGER.fullmatch(value) is None:
        raise ValueError(value)
    number = int(value)
    if not INTEGER_MIN <= number <= INTEGER_MAX:
        raise ValueError(value)
    return number


def _parse_number(value: str) -> Decimal:
    if _NUMBER.fullmatch(value) is None:
        raise ValueError(value)
    return Decimal(value)


def _significant_digits(value: str) -> int:
    return len(value.lstrip("-").replace(".", "", 1).lstrip("0"))


def _float_keeps(column: Sequence[str]) -> bool:
    """Say whether a 64-bit float keeps every number of a column exactly.

    Counts written digits, trailing zeros included, so `1.50` stays `1.50` too.
    """
    return max(map(len, column)) <= FLOAT_DIGITS or all(
        _significant_digits(value) <= FLOAT_DIGITS
        for value in column
        if len(value) > FLOAT_DIGITS
    )


def _parse_inferred_number(value: str) -> Decimal:
    """Parse a number a column could be typed by: one a float keeps as written."""
    if _INFERRED_NUMBER.fullmatch(value) is None or not _float_keeps((value,)):
        raise ValueError(value)
    return Decimal(value)


def _parse_boolean(value: str) -> bool:
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise ValueError(value) from None


def _parse_date(value: str) -> str:
    if _DATE.fullmatch(value) is None or not _is_date(value):
        raise ValueError(value)
    return value


_OFFSETS: dict[str | None, str] = {None: "+00:00", "Z": "+00:00"}


def _parse_date_time(value: str) -> str:
    """Give RFC 3339 with an offset; a value without one is taken as UTC.

    Built from the text's own digits, so that nothing is rounded or shifted.
    """
    moment = _DATE_TIME.fullmatch(value)
    if moment is not None:
        date, hours_minutes, seconds, offset = moment.groups()
        if _is_date(date):
            if offset not in _OFFSETS:
                _OFFSETS[offset] = _rfc3339_offset(offset)
            return f"{date}T{hours_minutes}{seconds or ':00'}{_OFFSETS[offset]}"
    elif _DATE.fullmatch(value) is not None and _is_date(value):
        return f"{value}T00:00:00+00:00"  # a date in a column widened to date-time
    raise ValueError(value)


def _rfc3339_offset(offset: str) -> str:
    digits = offset[1:].replace(":", "")
    return f"{offset[0]}{digits[:2]}:{digits[2:] or '00'}"


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
"""Parse a non-empty cell; raise ValueError when it does not fit the type.

A column pinned `number` takes any plain decimal: PostgreSQL's numeric keeps it."""


def _known_boolean(value: str) -> bool:
    return _BOOLEANS[value.lower()]


def _known_date_time(value: str) -> str:
    if len(value) == 19 and value[10] == " ":  # Oktopost's `YYYY-MM-DD HH:MM:SS`
        return f"{value[:10]}T{value[11:]}+00:00"
    return _parse_date_time(value)


PROVEN_CONVERTERS: dict[ColumnType, Callable[[str], Any]] = {
    **CONVERTERS,
    ColumnType.BOOLEAN: _known_boolean,
    ColumnType.INTEGER: int,
    ColumnType.NUMBER: Decimal,
    ColumnType.DATE: _keep_string,
    ColumnType.DATE_TIME: _known_date_time,
}
"""Parse a cell a scan found to fit the type: no check left to make (a date is sent
as written)."""

_NARROWEST_FIRST = (
    ColumnType.BOOLEAN,
    ColumnType.INTEGER,
    ColumnType.NUMBER,
    ColumnType.DATE,
    ColumnType.DATE_TIME,
)


_INFERRED = {**CONVERTERS, ColumnType.NUMBER: _parse_inferred_number}


def classify(value: str) -> ColumnType:
    """Give the narrowest type of one non-empty cell."""
    for column_type in _NARROWEST_FIRST:
        try:
            _INFERRED[column_type](value)
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


def _holds_booleans(column: Sequence[str], _: str) -> bool:
    return all(value.lower() in _BOOLEANS for value in set(column) if value)


def _holds_integers(column: Sequence[str], text: str) -> bool:
    if _INTEGER_COLUMN.fullmatch(text) is None:
        return False
    if max(map(len, column)) < _LONGEST_INTEGER - 1:
        return True
    return all(
        INTEGER_MIN <= int(value) <= INTEGER_MAX
        for value in column
        if len(value) >= _LONGEST_INTEGER - 1
    )


def _holds_numbers(column: Sequence[str], text: str) -> bool:
    return _INFERRED_NUMBER_COLUMN.fullmatch(text) is not None and _float_keeps(column)


def _holds_dates(column: Sequence[str], text: str) -> bool:
    if _DATE_COLUMN.fullmatch(text) is None:
        return False
    dates = set(column)
    dates.discard("")
    return all(map(_is_date, dates))


def _holds_date_times(column: Sequence[str], text: str) -> bool:
    if _DATE_TIME_COLUMN.fullmatch(text) is None:
        return False
    dates = set(map(_DATE_PART, column))
    dates.discard("")
    return all(map(_is_date, dates))


_HOLDS: dict[ColumnType, Callable[[Sequence[str], str], bool]] = {
    ColumnType.BOOLEAN: _holds_booleans,
    ColumnType.INTEGER: _holds_integers,
    ColumnType.NUMBER: _holds_numbers,
    ColumnType.DATE: _holds_dates,
    ColumnType.DATE_TIME: _holds_date_times,
}


def narrowest_type(column: Sequence[str], start: ColumnType) -> ColumnType:
    """Give the narrowest type, `start` or wider, that holds every value of a column.

    Values holding a newline fit no type but text; checking that the joined column
    has one newline fewer than values rules them out for every pattern at once.
    """
    if start is ColumnType.STRING or not any(column):
        return start
    text = "\n".join(column)
    if text.count("\n") != len(column) - 1:
        return ColumnType.STRING
    for candidate in _NARROWEST_FIRST:
        if widen(start, candidate) is candidate and _HOLDS[candidate](column, text):
            return candidate
    return ColumnType.STRING


SCAN_CHUNK_VALUES = 4096
"""Values checked at a time: a chunk small enough to stay in the CPU's caches."""


def scan_types(
    rows: Iterable[list[str]],
    width: int,
    start_types: Sequence[ColumnType] | None = None,
    skip: Sequence[str] | None = None,
    float_kept: list[bool] | None = None,
) -> list[ColumnType]:
    """Give each of the first `width` columns the narrowest type holding every value.

    Types only widen from `start_types` (`width` of them; all NULL when None).
    Rows are read a chunk at a time and checked column by column, which costs a
    fraction of building records. (Columns are cut from one flat list: `zip(*chunk)`
    would hold an iterator per row and set off the garbage collector.) Blank rows
    and missing trailing values count as empty; values beyond `width` are not
    typed. Rows equal to `skip` (a header repeated in the data) are left out.
    Every row is read, even once all columns are text, so that the whole input is
    known to decode. `float_kept` (`width` flags), when given, is cleared for a
    column found integer while one of its values is too long for a 64-bit float:
    what `rescanned_type` needs to give another start type's result.
    """
    types = list(start_types or [ColumnType.NULL] * width)
    chunk_rows = max(16, SCAN_CHUNK_VALUES // max(width, 1))
    padding = [""] * width
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, chunk_rows)):
        open_positions = [
            position
            for position, known in enumerate(types)
            if known is not ColumnType.STRING
        ]
        if not open_positions:
            collections.deque(iterator, maxlen=0)
            break
        if skip and skip in chunk:
            chunk = [row for row in chunk if row != skip]
        if set(map(len, chunk)) != {width}:
            chunk = [(row + padding)[:width] for row in chunk]
        values = list(itertools.chain.from_iterable(chunk))
        for position in open_positions:
            column = values[position::width]
            types[position] = narrowest_type(column, types[position])
            if (
                float_kept is not None
                and types[position] is ColumnType.INTEGER
                and not _float_keeps(column)
            ):
                float_kept[position] = False
    return types


def rescanned_type(
    start: ColumnType, found: ColumnType, *, float_kept: bool
) -> ColumnType:
    """Give what a scan from `start` finds where one from NULL found `found`.

    Types only widen, so this is `widen(start, found)`, but for a number start: a
    number column takes no value a 64-bit float would change, where an integer
    column takes up to 19 digits, so there `float_kept` (see `scan_types`) decides.
    """
    if start is ColumnType.NUMBER and found in {ColumnType.INTEGER, ColumnType.NUMBER}:
        return ColumnType.NUMBER if float_kept else ColumnType.STRING
    return widen(start, found)


def joined_type(
    first: ColumnType, second: ColumnType, *, floats_kept: bool
) -> ColumnType:
    """Give the type holding the values of two scans of one column (two files).

    `widen`, but a number column takes no integer a 64-bit float would change:
    where either scan found such integers (`floats_kept` false), text.
    """
    joined = widen(first, second)
    if joined is ColumnType.NUMBER and not floats_kept:
        return ColumnType.STRING
    return joined


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

"""Column types: classification, exact conversion, and whole-column scans."""

from __future__ import annotations

import datetime
import json
import random
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from tap_oktopost.tables.column_types import (
    CONVERTERS,
    PROVEN_CONVERTERS,
    ColumnType,
    classify,
    column_type_of,
    property_schema,
    rescanned_type,
    scan_types,
    widen,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

INT64_MAX = "9223372036854775807"
ENCODER = msgspec.json.Encoder(decimal_format="number")  # as tap_oktopost.output


def infer_types(rows: Iterable[list[str]], width: int) -> list[ColumnType]:
    """The reference: classify every value on its own and widen value by value."""
    types = [ColumnType.NULL] * width
    for row in rows:
        for position, value in enumerate(row[:width]):
            if value:
                types[position] = widen(types[position], classify(value))
    return types


def as_json(value: Any) -> Any:
    """Give the value as a target reads the tap's RECORD line back."""
    return json.loads(ENCODER.encode(value), parse_float=Decimal)


def utc(text: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(text.replace(" ", "T"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def assert_same_value(column_type: ColumnType, text: str, converted: Any) -> None:
    """The JSON value a record carries equals the CSV text as the column's type."""
    loaded = as_json(converted)
    if column_type in {ColumnType.STRING, ColumnType.NULL, ColumnType.DATE}:
        assert loaded == text
    elif column_type is ColumnType.BOOLEAN:
        assert loaded is (text.lower() == "true")
    elif column_type is ColumnType.INTEGER:
        assert type(loaded) is int
        assert str(loaded) == text
    elif column_type is ColumnType.NUMBER:
        assert Decimal(str(loaded)) == Decimal(text)
        assert Decimal(str(loaded)).is_signed() == text.startswith("-")
    else:
        assert loaded[10] == "T"
        assert loaded[-6] in "+-"
        assert utc(loaded) == utc(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", ColumnType.INTEGER),
        ("-7", ColumnType.INTEGER),
        ("0", ColumnType.INTEGER),
        ("-0", ColumnType.STRING),
        ("+5", ColumnType.STRING),
        ("0012345", ColumnType.STRING),
        (INT64_MAX, ColumnType.INTEGER),
        ("9223372036854775808", ColumnType.STRING),
        ("-9223372036854775808", ColumnType.INTEGER),
        ("-9223372036854775809", ColumnType.STRING),
        ("1234567890123456789012", ColumnType.STRING),
        ("3.14", ColumnType.NUMBER),
        ("-0.5", ColumnType.NUMBER),
        ("-0.0", ColumnType.STRING),
        ("-0e3", ColumnType.STRING),
        ("1e-3", ColumnType.STRING),
        ("00.5", ColumnType.STRING),
        ("true", ColumnType.BOOLEAN),
        ("FALSE", ColumnType.BOOLEAN),
        ("2026-11-27", ColumnType.DATE),
        ("2026-02-30", ColumnType.STRING),
        ("0000-01-01", ColumnType.STRING),
        ("2026-11-27 10:00:00", ColumnType.DATE_TIME),
        ("2026-11-27T10:00:00Z", ColumnType.DATE_TIME),
        ("2026-11-27T10:00:00.123+02:00", ColumnType.DATE_TIME),
        ("2026-11-27T10:00-0530", ColumnType.DATE_TIME),
        ("2026-11-27 24:00:00", ColumnType.STRING),
        ("2026-11-27 10:60:00", ColumnType.STRING),
        ("2026-11-27T10:00:00.1234567", ColumnType.STRING),
        ("n/a", ColumnType.STRING),
        ("1,234", ColumnType.STRING),
        ("NaN", ColumnType.STRING),
        ("1\n2", ColumnType.STRING),
    ],
)
def test_classify(value: str, expected: ColumnType) -> None:
    assert classify(value) is expected


def test_converters_give_json_native_values() -> None:
    assert CONVERTERS[ColumnType.INTEGER]("-12") == -12
    assert CONVERTERS[ColumnType.INTEGER](INT64_MAX) == 2**63 - 1
    assert CONVERTERS[ColumnType.NUMBER]("0.1000") == Decimal("0.1000")
    assert CONVERTERS[ColumnType.BOOLEAN]("True") is True
    assert CONVERTERS[ColumnType.BOOLEAN]("false") is False
    assert CONVERTERS[ColumnType.DATE]("2026-11-01") == "2026-11-01"
    convert_moment = CONVERTERS[ColumnType.DATE_TIME]
    assert convert_moment("2026-11-20 14:05:00") == "2026-11-20T14:05:00+00:00"
    assert convert_moment("2026-11-20T14:05:00Z") == "2026-11-20T14:05:00+00:00"
    assert convert_moment("2026-11-20T14:05:00+02:00") == "2026-11-20T14:05:00+02:00"
    assert convert_moment("2026-11-20T14:05-0530") == "2026-11-20T14:05:00-05:30"
    assert convert_moment("2026-11-20 14:05:00.5+01") == "2026-11-20T14:05:00.5+01:00"
    assert convert_moment("2026-11-20") == "2026-11-20T00:00:00+00:00"
    for column_type, value in [
        (ColumnType.INTEGER, "007"),
        (ColumnType.INTEGER, "-0"),
        (ColumnType.INTEGER, "9223372036854775808"),
        (ColumnType.NUMBER, "-0.00"),
        (ColumnType.BOOLEAN, "yes"),
        (ColumnType.DATE, "2026-02-29"),
        (ColumnType.DATE_TIME, "2026-02-29 10:00:00"),
    ]:
        with pytest.raises(ValueError, match=value):
            CONVERTERS[column_type](value)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (ColumnType.NULL, ColumnType.INTEGER, ColumnType.INTEGER),
        (ColumnType.INTEGER, ColumnType.NULL, ColumnType.INTEGER),
        (ColumnType.INTEGER, ColumnType.NUMBER, ColumnType.NUMBER),
        (ColumnType.DATE, ColumnType.DATE_TIME, ColumnType.DATE_TIME),
        (ColumnType.INTEGER, ColumnType.BOOLEAN, ColumnType.STRING),
        (ColumnType.DATE, ColumnType.INTEGER, ColumnType.STRING),
        (ColumnType.NUMBER, ColumnType.STRING, ColumnType.STRING),
    ],
)
def test_widen(first: ColumnType, second: ColumnType, expected: ColumnType) -> None:
    assert widen(first, second) is expected


SAMPLES = [
    "7",
    "-3",
    "2.5",
    "-0.25",
    "1E+5",
    INT64_MAX,
    "9223372036854775808",
    "true",
    "False",
    "2026-11-27",
    "2026-11-27 10:00:00",
    "2026-11-27T10:00:00.25-03:30",
    "n/a",
    "007",
    "-0",
]


@pytest.mark.parametrize("column_type", list(ColumnType))
@pytest.mark.parametrize("value", SAMPLES)
def test_a_widened_column_takes_the_value_that_widened_it(
    column_type: ColumnType, value: str
) -> None:
    wider = widen(column_type, classify(value))
    assert_same_value(wider, value, CONVERTERS[wider](value))
    for earlier in SAMPLES:
        if classify(earlier) in {column_type, ColumnType.NULL}:
            assert_same_value(wider, earlier, CONVERTERS[wider](earlier))


@pytest.mark.parametrize("column_type", list(ColumnType))
def test_schema_round_trip(column_type: ColumnType) -> None:
    schema = property_schema(column_type, "Original Header")
    assert "null" in schema["type"]
    assert schema["description"] == "Original Header"
    expected = ColumnType.STRING if column_type is ColumnType.NULL else column_type
    assert column_type_of(schema) is expected


def random_value(rng: random.Random, kind: str) -> str:
    """Give a value of a kind, often at or just past the edge of a type."""
    digits = "".join(rng.choices("0123456789", k=rng.randint(1, 21)))
    sign = rng.choice(["", "", "-"])
    moment = (
        f"{rng.randint(1990, 2030)}-{rng.randint(1, 13):02d}-{rng.randint(1, 31):02d}"
    )
    clock = f"{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}"
    makers: dict[str, Callable[[], str]] = {
        "integer": lambda: sign + (digits.lstrip("0") or "0"),
        "padded": lambda: digits,
        "edge": lambda: rng.choice(
            [INT64_MAX, "9223372036854775808", "-9223372036854775808", "-0", "0"]
        ),
        "number": lambda: f"{sign}{int(digits)}.{digits}",
        "exponent": lambda: (
            f"{sign}{rng.randint(0, 9)}e{rng.choice(['', '-', '+'])}"
            f"{rng.randint(0, 30)}"
        ),
        "boolean": lambda: rng.choice(["true", "false", "TRUE", "False", "yes"]),
        "date": lambda: moment,
        "date-time": lambda: (
            f"{moment}{rng.choice('T ')}{clock}"
            + rng.choice(["", ":00", ":59.5", ":07.123456"])
            + rng.choice(["", "Z", "+02:00", "-0530", "+01", "+24:00"])
        ),
        "text": lambda: rng.choice(["n/a", 'Grüße, "quoted"', "line\nbreak", " 1"]),
        "empty": lambda: "",
    }
    return makers[kind]()


KINDS = [
    "integer",
    "padded",
    "edge",
    "number",
    "exponent",
    "boolean",
    "date",
    "date-time",
    "text",
    "empty",
]


def random_rows(seed: int) -> tuple[list[list[str]], int]:
    """Give rows of columns that each mostly hold one kind, sometimes another."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    width = rng.randint(1, 8)
    kinds = [rng.choice(KINDS) for _ in range(width)]
    rows = []
    for _ in range(rng.choice([1, 5, 40, 600])):
        row = [
            random_value(rng, rng.choice(KINDS) if rng.random() < 0.02 else kind)
            for kind in kinds
        ]
        rows.append(row[: rng.randint(0, width)] if rng.random() < 0.05 else row)
    return rows, width


@pytest.mark.parametrize("seed", range(60))
def test_scan_finds_the_types_value_by_value_inference_finds(seed: int) -> None:
    rows, width = random_rows(seed)
    assert scan_types(rows, width) == infer_types(rows, width)


@pytest.mark.parametrize("seed", range(60))
def test_every_scanned_value_converts_to_the_same_value(seed: int) -> None:
    rows, width = random_rows(seed)
    types = scan_types(rows, width)
    for row in rows:
        for column_type, value in zip(types, row, strict=False):
            if value:
                assert_same_value(column_type, value, CONVERTERS[column_type](value))


def drifting_rows(seed: int) -> tuple[list[list[str]], int]:
    """Give wide rows (a chunk is 16 rows) whose columns change kind between blocks.

    Each column holds one kind per block of a chunk's rows or so, so a column's type
    is decided over several chunks: integers then numbers, dates then date-times,
    short numbers then long integers.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    width = rng.choice([256, 300])
    kinds = [rng.choice(KINDS) for _ in range(width)]
    rows = []
    for block in range(rng.randint(1, 6)):
        if block:
            kinds = [
                rng.choice(KINDS) if rng.random() < 0.3 else kind for kind in kinds
            ]
        for _ in range(rng.choice([3, 16, 40])):
            row = [random_value(rng, kind) for kind in kinds]
            rows.append(row[: rng.randint(0, width)] if rng.random() < 0.05 else row)
    return rows, width


@pytest.mark.parametrize("seed", range(24))
def test_a_scan_from_a_start_type_is_the_scan_from_null_rescanned(seed: int) -> None:
    """What lets a sync reuse discovery's scan: for every start type and column."""
    rows, width = drifting_rows(seed)
    float_kept = [True] * width
    found = scan_types(rows, width, float_kept=float_kept)
    for start in ColumnType:
        expected = scan_types(rows, width, [start] * width)
        assert [
            rescanned_type(start, column_type, float_kept=kept)
            for column_type, kept in zip(found, float_kept, strict=True)
        ] == expected, start


@pytest.mark.parametrize(
    ("values", "found", "kept"),
    [
        (["1", "12345678901234567"], ColumnType.INTEGER, False),
        (["1", "123456789012345"], ColumnType.INTEGER, True),
        (["1.5", "2"], ColumnType.NUMBER, True),
    ],
)
def test_a_number_start_rescans_long_integers_as_text(
    values: list[str], found: ColumnType, kept: bool
) -> None:
    rows = [[value] for value in values]
    float_kept = [True]
    assert scan_types(rows, 1, float_kept=float_kept) == [found]
    assert float_kept == [kept]
    from_number = scan_types(rows, 1, [ColumnType.NUMBER])
    assert from_number == [ColumnType.NUMBER if kept else ColumnType.STRING]
    assert rescanned_type(ColumnType.NUMBER, found, float_kept=kept) is from_number[0]


def test_scan_only_widens_from_its_start_types() -> None:
    rows = [["1", "1", "", "2026-11-27"], ["2", "x", "", "2026-11-28"]]
    start = [
        ColumnType.NUMBER,
        ColumnType.INTEGER,
        ColumnType.BOOLEAN,
        ColumnType.DATE_TIME,
    ]
    assert scan_types(rows, 4, start) == [
        ColumnType.NUMBER,
        ColumnType.STRING,
        ColumnType.BOOLEAN,
        ColumnType.DATE_TIME,
    ]


def test_scan_reads_past_one_chunk_and_finds_a_late_value() -> None:
    rows = [[str(n), "true"] for n in range(10_000)] + [["1.5", "maybe"]]
    assert scan_types(rows, 2) == [ColumnType.NUMBER, ColumnType.STRING]
    assert scan_types(iter(rows[:-1]), 2) == [ColumnType.INTEGER, ColumnType.BOOLEAN]


def test_scan_counts_blank_rows_and_short_rows_as_empty_and_ignores_extras() -> None:
    rows = [["1", "2026-11-01", "x"], [], ["2"], ["3", "", "y", "z"]]
    assert scan_types(rows, 3) == [
        ColumnType.INTEGER,
        ColumnType.DATE,
        ColumnType.STRING,
    ]
    assert scan_types([[], []], 2) == [ColumnType.NULL, ColumnType.NULL]


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-27 10:00:00",
        "2026-11-27T10:00:00Z",
        "2026-11-27 10:00",
        "2026-11-27T10:00:00.123+0200",
        "2026-11-27",
        "12",
        "-5",
        INT64_MAX,
        "1.50",
        "-2e3",
        "TRUE",
        "false",
    ],
)
def test_proven_converters_give_what_the_checked_ones_give(value: str) -> None:
    for column_type, checked in CONVERTERS.items():
        try:
            expected = checked(value)
        except ValueError:
            continue
        assert PROVEN_CONVERTERS[column_type](value) == expected


def plain_number(rng: random.Random, digits: int) -> str:
    """Give a number in plain decimal notation with `digits` significant digits."""
    written = str(rng.randint(10 ** (digits - 1), 10**digits - 1))
    if digits > 1 and rng.random() < 0.3:
        written = written[:-1] + "0"  # trailing zeros are written digits too
    point = rng.randint(-5, digits)
    if point <= 0:
        text = "0." + "0" * -point + written
    elif point == digits:
        text = written
    else:
        text = f"{written[:point]}.{written[point:]}"
    return rng.choice(["", "-"]) + text


def unplain_number(rng: random.Random) -> str:
    """Give a number in any notation but plain decimal: each is text as written."""
    digits = str(rng.randint(1, 10**6))
    return rng.choice(
        [
            f"{digits}E{rng.randint(0, 12)}",
            f"{digits[0]}e-{rng.randint(1, 9)}",
            f"{rng.randint(1, 9)}.{digits}E+{rng.randint(1, 5)}",
            f"+{digits}",
            f".{digits}",
            f"-.{digits}",
            f"{digits}.",
            f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}",
            f"{rng.randint(1, 999)}_{rng.randint(0, 999):03d}",
            f"0x{rng.randint(1, 4096):X}",
            f"0{digits}",
            f"-0.{'0' * rng.randint(1, 4)}",
            rng.choice(["Infinity", "-Infinity", "inf", "NaN", "nan", "-0"]),
            f" {digits}",
            f"{digits} ",
            f"0.000000{digits}",
        ]
    )


@pytest.mark.parametrize("seed", range(40))
def test_a_number_column_sends_each_value_as_written_and_a_float_keeps_it(
    seed: int,
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    column = [plain_number(rng, rng.randint(1, 15)) for _ in range(rng.randint(1, 300))]
    column.append(plain_number(rng, 15))
    if all("." not in value for value in column):
        column.append("0.5")
    assert scan_types([[value] for value in column], 1) == [ColumnType.NUMBER]
    for value in column:
        assert classify(value) in {ColumnType.INTEGER, ColumnType.NUMBER}
        for converters in (CONVERTERS, PROVEN_CONVERTERS):
            sent = ENCODER.encode(converters[ColumnType.NUMBER](value)).decode()
            assert sent == value
        assert Decimal(repr(float(value))) == Decimal(value)


@pytest.mark.parametrize("seed", range(40))
def test_one_number_not_in_plain_notation_makes_its_column_text(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    odd = unplain_number(rng)
    column = [plain_number(rng, rng.randint(1, 12)) for _ in range(rng.randint(0, 50))]
    column.insert(rng.randint(0, len(column)), odd)
    assert classify(odd) is not ColumnType.NUMBER
    assert scan_types([[value] for value in column], 1) == [ColumnType.STRING]
    assert infer_types([[value] for value in column], 1) == [ColumnType.STRING]


@pytest.mark.parametrize("seed", range(40))
def test_numbers_a_float_would_round_make_their_column_text_unless_pinned(
    seed: int,
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    wide = rng.choice(
        [
            plain_number(rng, rng.randint(16, 40)),
            str(rng.randint(2**63, 2**80)),
            str(-rng.randint(2**63 + 1, 2**80)),
        ]
    )
    column = [plain_number(rng, rng.randint(1, 15)) for _ in range(rng.randint(0, 50))]
    column.insert(rng.randint(0, len(column)), wide)
    assert scan_types([[value] for value in column], 1) == [ColumnType.STRING]
    assert infer_types([[value] for value in column], 1) == [ColumnType.STRING]
    pinned = CONVERTERS[ColumnType.NUMBER](wide)
    assert Decimal(str(as_json(pinned))) == Decimal(wide)


def test_integers_of_64_bits_stay_integers_past_a_floats_digits() -> None:
    column = [INT64_MAX, "-9223372036854775808", "1234567890123456", "7"]
    assert scan_types([[value] for value in column], 1) == [ColumnType.INTEGER]
    assert scan_types([[value] for value in [*column, "1.5"]], 1) == [ColumnType.STRING]

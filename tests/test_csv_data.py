"""Table and column naming, type inference and value parsing of export CSV files."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from tap_oktopost.csv_data import (
    CONVERTERS,
    ColumnType,
    CsvSource,
    TableShape,
    classify,
    column_names,
    column_type_of,
    infer_types,
    property_schema,
    table_name,
    widen,
)


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("2026-11-27-Posts.csv", "posts"),
        ("reports/Post Stats.csv", "post_stats"),
        ("2026-11-27_Campaign Report.CSV", "campaign_report"),
        ("nested/deeper/Clicks by Network (%).csv", "clicks_by_network"),
        ("Café Stats.csv", "cafe_stats"),
        ("2026-11-27.csv", "2026_11_27"),
        ("reports/", None),
        ("summary.pdf", None),
        ("Posts.csv.txt", None),
    ],
)
def test_table_names(member: str, expected: str | None) -> None:
    assert table_name(member) == expected


def test_column_names_are_cleaned_unique_and_never_empty() -> None:
    header = ["\ufeffPost ID", "Clicks", "clicks", "", "Export ID", " Rate (%) ", ""]
    assert column_names(header) == [
        "post_id",
        "clicks",
        "clicks_2",
        "column_4",
        "export_id_2",
        "rate",
        "column_7",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", ColumnType.INTEGER),
        ("-7", ColumnType.INTEGER),
        ("0", ColumnType.INTEGER),
        ("0012345", ColumnType.STRING),
        ("1234567890123456789012", ColumnType.NUMBER),
        ("3.14", ColumnType.NUMBER),
        ("-0.5", ColumnType.NUMBER),
        ("1e-3", ColumnType.NUMBER),
        ("00.5", ColumnType.STRING),
        ("true", ColumnType.BOOLEAN),
        ("FALSE", ColumnType.BOOLEAN),
        ("2026-11-27", ColumnType.DATE),
        ("2026-02-30", ColumnType.STRING),
        ("2026-11-27 10:00:00", ColumnType.DATE_TIME),
        ("2026-11-27T10:00:00Z", ColumnType.DATE_TIME),
        ("2026-11-27T10:00:00.123+02:00", ColumnType.DATE_TIME),
        ("n/a", ColumnType.STRING),
        ("1,234", ColumnType.STRING),
        ("NaN", ColumnType.STRING),
    ],
)
def test_classify(value: str, expected: ColumnType) -> None:
    assert classify(value) is expected


def test_converters_give_json_native_values() -> None:
    assert CONVERTERS[ColumnType.INTEGER]("-12") == -12
    assert CONVERTERS[ColumnType.NUMBER]("0.1000") == Decimal("0.1000")
    assert CONVERTERS[ColumnType.BOOLEAN]("True") is True
    assert CONVERTERS[ColumnType.BOOLEAN]("false") is False
    assert CONVERTERS[ColumnType.DATE]("2026-11-01") == "2026-11-01"
    convert_moment = CONVERTERS[ColumnType.DATE_TIME]
    assert convert_moment("2026-11-20 14:05:00") == "2026-11-20T14:05:00+00:00"
    assert convert_moment("2026-11-20T14:05:00Z") == "2026-11-20T14:05:00+00:00"
    assert convert_moment("2026-11-20T14:05:00+02:00") == "2026-11-20T14:05:00+02:00"
    with pytest.raises(ValueError, match="007"):
        CONVERTERS[ColumnType.INTEGER]("007")
    with pytest.raises(ValueError, match="yes"):
        CONVERTERS[ColumnType.BOOLEAN]("yes")


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


def test_infer_types_from_rows_with_empty_cells_and_short_rows() -> None:
    rows = [
        ["1", "", "true", "2026-11-01", "x"],
        ["2", "1.5", "false", "2026-11-02 10:00:00"],
        ["3", "2", "", "", "y"],
    ]
    assert infer_types(rows, 6) == [
        ColumnType.INTEGER,
        ColumnType.NUMBER,
        ColumnType.BOOLEAN,
        ColumnType.DATE_TIME,
        ColumnType.STRING,
        ColumnType.NULL,
    ]


@pytest.mark.parametrize("column_type", list(ColumnType))
def test_schema_round_trip(column_type: ColumnType) -> None:
    schema = property_schema(column_type, "Original Header")
    assert "null" in schema["type"]
    assert schema["description"] == "Original Header"
    expected = ColumnType.STRING if column_type is ColumnType.NULL else column_type
    assert column_type_of(schema) is expected


def test_table_shape_unions_columns_and_widens_types() -> None:
    shape = TableShape()
    shape.add(["Post ID", "Clicks"], [["0012", "5"]])
    shape.add(["Post ID", "Clicks", "Rate"], [["0013", "5.5", "0.1"]])
    properties = shape.json_schema()["properties"]
    assert properties["clicks"]["type"] == ["number", "null"]
    assert properties["rate"]["type"] == ["number", "null"]
    assert properties["post_id"] == {
        "type": ["string", "null"],
        "description": "Post ID",
    }
    assert {"export_id", "_sdc_row_number", "_sdc_extra"} <= set(properties)


def read(data: bytes) -> tuple[list[list[str]], list[str]]:
    source = CsvSource(io.BytesIO(data))
    return [row for row in source.rows if row], source.repairs()


def test_reads_bom_crlf_cr_lf_and_quoted_newlines() -> None:
    text = '\ufeffId,Message\r\n1,"Hello, ""world""\r\nsecond"\r\n\r\n2,cr\r3,lf\n'
    assert read(text.encode("utf-8")) == (
        [
            ["Id", "Message"],
            ["1", 'Hello, "world"\r\nsecond'],
            ["2", "cr"],
            ["3", "lf"],
        ],
        [],
    )


def test_reads_utf16_with_bom() -> None:
    text = "Id,Name\r\n1,Grüße ✓\r\n"
    for encoding in ("utf-16-le", "utf-16-be"):
        bom = "\ufeff".encode(encoding)
        assert read(bom + text.encode(encoding)) == (
            [["Id", "Name"], ["1", "Grüße ✓"]],
            [],
        )


def test_text_that_is_not_utf8_is_read_as_cp1252_with_a_note() -> None:
    rows, repairs = read(
        "Id,Name\n1,Café \u2013 \u201cquoted\u201d \x81\n".encode("cp1252", "ignore")
        + b"\x81\n"
    )
    assert rows[1][1].startswith("Café \u2013 \u201cquoted\u201d")
    assert rows[2] == ["\x81"]
    assert repairs == ["text that is not UTF-8 was read as Windows-1252 (cp1252)"]


def test_nul_bytes_are_dropped_with_a_note() -> None:
    assert read(b"Id,Name\n1,a\x00b\n\x00\x00\x002,c\n") == (
        [["Id", "Name"], ["1", "ab"], ["2", "c"]],
        ["NUL bytes were dropped"],
    )


def test_a_field_over_128_kib_is_read_whole() -> None:
    big = "x" * (300 * 1024)
    rows, _ = read(f'Id,Text\n1,"{big}"\n'.encode())
    assert rows[1] == ["1", big]


SAMPLES = ["7", "-3", "2.5", "true", "2026-11-27", "2026-11-27 10:00:00", "n/a", "007"]


@pytest.mark.parametrize("column_type", list(ColumnType))
@pytest.mark.parametrize("value", SAMPLES)
def test_a_widened_column_takes_the_value_that_widened_it(
    column_type: ColumnType, value: str
) -> None:
    wider = widen(column_type, classify(value))
    assert CONVERTERS[wider](value) is not None
    for earlier in SAMPLES:
        if classify(earlier) in {column_type, ColumnType.NULL}:
            assert CONVERTERS[wider](earlier) is not None

"""Reading export CSV members: one decoding per file, scans, records, table shapes."""

from __future__ import annotations

import codecs
import csv
import io
import random
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

import pytest

from tap_oktopost.tables.column_types import ColumnType
from tap_oktopost.tables.column_typing import TableShape
from tap_oktopost.tables.csv_data import (
    METADATA_PROPERTIES,
    SEPARATORS,
    CsvSource,
    MemberScan,
    RecordBuilder,
    SeparatorError,
    decoding_of,
    scan_member,
    separator_of,
)
from tap_oktopost.tables.names import UNFIT_VALUES

if TYPE_CHECKING:
    from collections.abc import Callable

CP1252_NOTE = "text that is not UTF-8 was read as Windows-1252 (cp1252)"
METADATA = {
    "export_id": "032000000000201",
    "sync_timestamp": "2026-11-29T08:00:00+00:00",
    "_sdc_source_file": "2026-11-27-Posts.csv",
    "_sdc_export_run_at": "2026-11-27T10:00:00+00:00",
}


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
    assert set(METADATA_PROPERTIES) <= set(properties)
    assert properties[UNFIT_VALUES]["type"] == ["object", "null"]


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


def test_a_file_that_is_not_utf8_is_cp1252_throughout() -> None:
    # "ß“" is DF 93 in cp1252, which is also valid UTF-8 (one character, "ߓ"):
    # repairing byte by byte would misread it; the whole file is one decision.
    text = "Id,Name\n1,Straße “quoted”\n2,Café \u2013 é\n"
    rows, repairs = read(text.encode("cp1252"))
    assert rows == [["Id", "Name"], ["1", "Straße “quoted”"], ["2", "Café \u2013 é"]]
    assert repairs == [CP1252_NOTE]


def test_bytes_cp1252_leaves_undefined_are_read_as_latin1() -> None:
    rows, repairs = read(b"Id,Name\n1,caf\xe9 \x81\x8d\x8f\x90\x9d\n")
    assert rows[1] == ["1", "café \x81\x8d\x8f\x90\x9d"]
    assert repairs == [CP1252_NOTE]


def test_nul_bytes_are_dropped_with_a_note() -> None:
    assert read(b"Id,Name\n1,a\x00b\n\x00\x00\x002,c\n") == (
        [["Id", "Name"], ["1", "ab"], ["2", "c"]],
        ["NUL characters were dropped from 2 line(s), the first line 2"],
    )


def test_a_field_over_128_kib_is_read_whole() -> None:
    big = "x" * (300 * 1024)
    rows, _ = read(f'Id,Text\n1,"{big}"\n'.encode())
    assert rows[1] == ["1", big]


def test_a_head_sample_decides_and_later_odd_bytes_are_replaced_with_a_note() -> None:
    data = "Id,Name\n1,Grüße\n".encode() + b"2,caf\xe9\n"
    binary = io.BytesIO(data)
    source = CsvSource(binary, buffer_bytes=16)
    assert binary.tell() == 0  # a damaged member fails where rows are read
    rows = [row for row in source.rows if row]
    assert source.decoding == decoding_of(b"Id,Name\n1,Gr\xc3\xbc", whole=False)
    assert rows[1:] == [["1", "Grüße"], ["2", "caf\ufffd"]]
    assert source.repairs() == [
        "1 damaged byte sequence(s) that are not UTF-8 were replaced by U+FFFD, "
        "the first on line 3"
    ]


def test_a_character_cut_at_the_end_of_a_head_sample_is_still_utf8() -> None:
    head = "Grüße".encode()[:3]  # ends inside "ü"
    assert decoding_of(head, whole=False).encoding == "utf-8-sig"
    assert decoding_of(head, whole=True).encoding == "cp1252"


class Member:
    """An archive member that can be opened again, counting how often it was."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.opened = 0

    def __call__(self) -> IO[bytes]:
        self.opened += 1
        return io.BytesIO(self.data)

    def records(
        self,
        scan: MemberScan,
        on_unfit: Callable[[str, int, str], None] | None = None,
    ) -> list[dict[str, Any]]:
        source = CsvSource(self(), decoding=scan.decoding)
        assert source.header() == scan.header
        builder = RecordBuilder(scan.names, scan.types, METADATA, on_unfit)
        return list(builder.records(source.rows))


def test_scan_member_decides_the_decoding_and_types_from_every_row() -> None:
    lines = ["Post ID,Clicks,Rate,Name"] + [f"{n:04d},{n},0.5,x" for n in range(3000)]
    text = "\r\n".join([*lines, "9,12.5,,Straße “quoted”", ""])
    member = Member(text.encode("cp1252"))
    scan = scan_member(member)
    assert scan.decoding.note == CP1252_NOTE
    assert scan.header == ["Post ID", "Clicks", "Rate", "Name"]
    assert scan.names == ["post_id", "clicks", "rate", "name"]
    assert scan.types == [
        ColumnType.STRING,
        ColumnType.NUMBER,
        ColumnType.NUMBER,
        ColumnType.STRING,
    ]
    assert member.opened == 3  # the BOM, the UTF-8 attempt, the cp1252 scan
    records = member.records(scan)
    assert records[-1]["name"] == "Straße “quoted”"
    assert records[-1]["clicks"] == Decimal("12.5")


def test_scan_member_widens_from_start_types_and_keeps_pinned_ones() -> None:
    member = Member(b"\xef\xbb\xbfA,B,C\r\n1,2,x\r\n")
    scan = scan_member(
        member,
        start_types={"a": ColumnType.NUMBER, "b": ColumnType.BOOLEAN},
        pinned={"c": ColumnType.INTEGER},
    )
    assert scan.decoding.note is None
    assert scan.header == ["A", "B", "C"]
    assert scan.types == [ColumnType.NUMBER, ColumnType.STRING, ColumnType.INTEGER]
    assert member.opened == 2


def test_scan_member_of_an_empty_member() -> None:
    assert scan_member(Member(b"")).names == []
    assert scan_member(Member(b"\r\n\r\n")).types == []


def test_records_as_the_stream_emits_them() -> None:
    text = (
        "Id,Clicks,Day,Note\r\n"
        "\r\n"
        "1,5,2026-11-27,hello\r\n"
        "2,,,\r\n"
        "3,7\r\n"
        "\r\n"
        "4,8,2026-11-28,x,extra,more\r\n"
    )
    member = Member(text.encode())
    records = member.records(scan_member(member))
    assert records == [
        {
            **METADATA,
            "id": 1,
            "clicks": 5,
            "day": "2026-11-27",
            "note": "hello",
            "_sdc_row_number": 1,
            "_sdc_extra": None,
            UNFIT_VALUES: None,
        },
        {
            **METADATA,
            "id": 2,
            "clicks": None,
            "day": None,
            "note": None,
            "_sdc_row_number": 2,
            "_sdc_extra": None,
            UNFIT_VALUES: None,
        },
        {
            **METADATA,
            "id": 3,
            "clicks": 7,
            "day": None,
            "note": None,
            "_sdc_row_number": 3,
            "_sdc_extra": None,
            UNFIT_VALUES: None,
        },
        {
            **METADATA,
            "id": 4,
            "clicks": 8,
            "day": "2026-11-28",
            "note": "x",
            "_sdc_row_number": 4,
            "_sdc_extra": ["extra", "more"],
            UNFIT_VALUES: None,
        },
    ]


def test_a_value_that_does_not_fit_is_kept_as_text_and_reported() -> None:
    reported: list[tuple[str, int, str]] = []
    builder = RecordBuilder(
        ["id", "clicks", "day"],
        [ColumnType.INTEGER, ColumnType.INTEGER, ColumnType.DATE],
        METADATA,
        lambda *unfit: reported.append(unfit),
    )
    rows = [["1", "5", "2026-11-27"], ["2", "5.5", "2026-02-30"], ["3", "007"], ["x"]]
    records = list(builder.records(rows))
    assert [(r["id"], r["clicks"], r["day"]) for r in records] == [
        (1, 5, "2026-11-27"),
        (2, None, None),
        (3, None, None),
        (None, None, None),
    ]
    assert [r[UNFIT_VALUES] for r in records] == [
        None,
        {"clicks": "5.5", "day": "2026-02-30"},
        {"clicks": "007"},
        {"id": "x"},
    ]
    assert reported == [
        ("clicks", 2, "5.5"),
        ("day", 2, "2026-02-30"),
        ("clicks", 3, "007"),
        ("id", 4, "x"),
    ]


ALPHABET = (
    "abcXYZ019 ,;\"'\r\n\t-\u2013\u2014“”\u2018\u2019€…•™éüßçñøåÆŒšžŸ¡¿£¥©®°±µ¶·÷"
)
WIDE_ALPHABET = ALPHABET + "ЖЯαβ投稿😀\u0301\ufeff"


def random_table(rng: random.Random, alphabet: str) -> list[list[str]]:
    width = rng.randint(1, 5)
    return [
        ["".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(width)]
        for _ in range(rng.randint(1, 60))
    ]


def csv_bytes(
    rows: list[list[str]], encoding: str, *, quote_all: bool = False
) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    if quote_all:
        writer = csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom", "cp1252"]
)
def test_random_text_decodes_back_exactly(seed: int, encoding: str) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    rows = random_table(rng, ALPHABET if encoding == "cp1252" else WIDE_ALPHABET)
    if seed % 5 == 0 and encoding != "cp1252":
        rows[0][0] = "\ufeff" + rows[0][0]  # a BOM character in the text itself
    if encoding == "utf-16-be-bom":
        data = codecs.BOM_UTF16_BE + csv_bytes(rows, "utf-16-be", quote_all=True)
    else:
        data = csv_bytes(rows, encoding, quote_all=True)  # `;` in a one-column header
    if encoding == "utf-8" and data.startswith(codecs.BOM_UTF8):
        rows[0][0] = rows[0][0].removeprefix("\ufeff")  # reads as the file's BOM
    scan = scan_member(Member(data))
    read_as_cp1252 = encoding == "cp1252" and not _valid_utf8(data)
    assert (scan.decoding.note == CP1252_NOTE) == read_as_cp1252
    source = CsvSource(io.BytesIO(data), decoding=scan.decoding)
    decoded = [row for row in source.rows if row]
    if encoding != "cp1252" or read_as_cp1252 or data.isascii():
        assert decoded == rows
    assert source.repairs() == ([CP1252_NOTE] if read_as_cp1252 else [])


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("seed", range(40))
def test_records_of_scanned_types_have_no_unfit_values(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    kinds: list[Callable[[], str]] = [
        lambda: str(rng.randint(-(10**20), 10**20)),
        lambda: f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}",
        lambda: rng.choice(["true", "false", "TRUE"]),
        lambda: f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        lambda: f"2026-11-{rng.randint(1, 30):02d} {rng.randint(0, 23):02d}:00:00",
        lambda: rng.choice(["", "n/a", "0", "-0", "1e5", "2026-02-29"]),
    ]
    width = rng.randint(1, 6)
    chosen = [rng.choice(kinds) for _ in range(width)]
    rows = [["h" + str(n) for n in range(width)]]
    rows += [[make() for make in chosen] for _ in range(rng.randint(1, 300))]
    member = Member(csv_bytes(rows, "utf-8"))
    scan = scan_member(member)
    reported: list[tuple[str, int, str]] = []
    records = member.records(scan, on_unfit=lambda *unfit: reported.append(unfit))
    assert reported == []
    assert all(record[UNFIT_VALUES] is None for record in records)
    for record, row in zip(records, rows[1:], strict=True):
        for name, value in zip(scan.names, row, strict=True):
            assert (record[name] is None) == (value == "")


def test_a_utf8_bom_in_front_of_cp1252_text_is_dropped() -> None:
    data = codecs.BOM_UTF8 + "Größe,Name\n1,Caf\xe9\n".encode("cp1252")
    member = Member(data)
    scan = scan_member(member)
    assert scan.header == ["Größe", "Name"]
    assert scan.names == ["grosse", "name"]
    assert member.records(scan)[0]["name"] == "Café"


@pytest.mark.parametrize("seed", range(60))
def test_the_separator_of_a_header_line_is_found_outside_quotes(seed: int) -> None:
    """Cells may hold the other separators, fewer times than the separator itself
    (an `Amount, EUR` cell in a `;` file); a cell quoted for a separator or a
    quote may hold any number of them."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    separator = rng.choice(SEPARATORS)
    others = [s for s in SEPARATORS if s != separator]
    width = rng.randint(2, 12)
    cells = ["".join(rng.choices("abc XYZ", k=rng.randint(1, 9))) for _ in range(width)]
    for position in rng.sample(range(width), rng.randint(0, (width - 1) // 2)):
        cells[position] += rng.choice(others) + "x"
    for position in rng.sample(range(width), rng.randint(0, width // 2)):
        cells[position] += separator + "".join(rng.choices([*others, '"'], k=9))
    text = io.StringIO()
    csv.writer(text, delimiter=separator).writerow(cells)
    header = text.getvalue()

    assert separator_of(header) == separator
    assert list(csv.reader(io.StringIO(header), delimiter=separator)) == [cells]


@pytest.mark.parametrize("seed", range(20))
def test_a_tie_is_settled_by_the_next_line_or_is_an_error(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    first, second = rng.sample(SEPARATORS, 2)
    count = rng.randint(1, 5)
    header = "".join(f"h{n}{first}g{n}{second}" for n in range(count)) + "last"
    with pytest.raises(SeparatorError, match="cannot tell the CSV separator") as error:
        separator_of(header)
    assert f"{count} time(s) each" in str(error.value)
    settles = first.join(["v"] * (count + 1))
    assert separator_of(header, settles) == first
    with pytest.raises(SeparatorError):
        separator_of(header, header)


def test_a_header_without_a_separator_is_one_column() -> None:
    for header in ("Message", '"Note, with comma; and more"', "Post ID\r\n", ""):
        assert separator_of(header) == ","


def test_a_damaged_utf8_head_stays_utf8_and_a_cp1252_head_is_cp1252() -> None:
    text = "Id,Name\n" + "".join(f"{n},Zoë 投稿 😀\n" for n in range(50))
    damaged = text.encode().replace("😀".encode(), "😀".encode()[:-1], 1)
    assert decoding_of(damaged, whole=True).encoding == "utf-8-sig"
    assert decoding_of(b"\xff" + text.encode(), whole=True).encoding == "utf-8-sig"
    legacy = text.replace(" 投稿 😀", " Café").encode("cp1252")
    assert decoding_of(legacy, whole=True).encoding == "cp1252"
    assert decoding_of(codecs.BOM_UTF8 + legacy, whole=True).encoding == "cp1252"

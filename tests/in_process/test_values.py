"""Every value as it was written (issue 19), generated, checked in the tap's output.

Each test makes many instances of one class of input with seeded random data, syncs
them in process from the stand-in and reads back the RECORD lines: numbers by their
JSON text, text by its characters, and the warnings that name the file and rows.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyascii
import pytest

from tap_oktopost.tables.column_types import column_type_of
from tap_oktopost.tables.csv_data import METADATA_PROPERTIES
from tests.conftest import TapRun, config_for, export_with, sync_in_process
from tests.stand_ins.oktopost_stand_in import OktopostStandIn
from tests.unit.test_column_types import plain_number, unplain_number

if TYPE_CHECKING:
    from collections.abc import Callable

EXPORT = "032000000000001"
OTHER = "032000000000002"
MEMBER = "Posts.csv"
TEXT = "abcXYZ019 éüßçñ€\u2013“”"
"""Characters of values: some not ASCII, all in cp1252, no separator or quote."""
WIDE_TEXT = TEXT + "ЖαβЯ投稿😀"


def sync_members(
    stand_in: OktopostStandIn, members: dict[str, str | bytes], **settings: Any
) -> TapRun:
    stand_in.add_export(export_with(EXPORT, members))
    return sync_in_process(config_for(stand_in, **settings))


def records_as_written(run: TapRun, stream: str) -> list[dict[str, Any]]:
    """The stream's records with every JSON number as the text the tap wrote."""
    records = []
    for line in run.stdout.splitlines():
        message = json.loads(line, parse_float=str, parse_int=str)
        if message["type"] == "RECORD" and message["stream"] == stream:
            records.append(message["record"])
    return records


def column_types(run: TapRun, stream: str) -> dict[str, str]:
    (schema, *_) = run.schemas(stream)
    return {
        name: column_type_of(column).value
        for name, column in schema["properties"].items()
    }


def warnings_of(run: TapRun, member: str = MEMBER) -> list[str]:
    prefix = f"Export {EXPORT}, file {member}: "
    return [
        line.split(prefix, 1)[1]
        for line in run.stderr.splitlines()
        if line.startswith("WARNING") and prefix in line
    ]


def text_value(rng: random.Random, alphabet: str = TEXT) -> str:
    return "".join(rng.choices(alphabet, k=rng.randint(1, 10))).strip() or "x"


def csv_of(rows: list[list[str]], delimiter: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


# -- 1. Numbers keep their text ---------------------------------------------------


NUMBER_COLUMNS = {
    # header: (column, the type it is given)
    "Id": ("id", "integer"),
    "Amount": ("amount", "number"),
    "Code": ("code", "string"),
    "Wide": ("wide", "string"),
    "Huge Id": ("huge_id", "string"),
}


def number_rows(seed: int) -> list[list[str]]:
    """A CSV (header first) of the classes of item 1: integers up to 64 bits, plain
    decimals a float keeps (trailing zeros, tiny and 15-digit ones), a column with
    one number written otherwise (exponent, `+`, `.5`, `1,000`, `NaN`, ...), one
    with a decimal a float would round, and integers past 64 bits."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    count = rng.randint(5, 120)
    odd_row, wide_row = rng.randrange(count), rng.randrange(count)
    rows = [list(NUMBER_COLUMNS)]
    for number in range(count):
        integer = rng.choice(
            [rng.randint(-(10**6), 10**6), 2**63 - 1, -(2**63), 10**15 + number]
        )
        rows.append(
            [
                str(integer),
                plain_number(rng, rng.randint(1, 15)) if number else "0.50",
                unplain_number(rng) if number == odd_row else str(rng.randint(0, 999)),
                plain_number(rng, rng.randint(16, 30))
                if number == wide_row
                else plain_number(rng, rng.randint(1, 15)),
                str(rng.choice([1, -1]) * rng.randint(2**63 + 1, 10**30)),
            ]
        )
    return rows


@pytest.mark.parametrize("seed", range(8))
def test_numbers_reach_the_record_as_written_or_stay_text(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rows = number_rows(seed)
    run = sync_members(stand_in, {MEMBER: csv_of(rows)})

    assert run.returncode == 0, run.stderr[-2000:]
    types = column_types(run, "posts")
    assert {name: types[name] for name, _ in NUMBER_COLUMNS.values()} == dict(
        NUMBER_COLUMNS.values()
    )
    names = [name for name, _ in NUMBER_COLUMNS.values()]
    written = records_as_written(run, "posts")
    assert [[record[name] for name in names] for record in written] == rows[1:]
    json_types: dict[str, tuple[type, ...]] = {
        "integer": (int,),
        "number": (int, float, Decimal),
        "string": (str,),
    }
    for record in run.records("posts"):
        for name, column_type in NUMBER_COLUMNS.values():
            assert isinstance(record[name], json_types[column_type]), name
    assert not warnings_of(run)


@pytest.mark.parametrize("seed", range(4))
def test_a_pinned_number_column_takes_wide_decimals_whole(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    values = [plain_number(rng, rng.randint(16, 38)) for _ in range(20)]
    run = sync_members(
        stand_in,
        {MEMBER: csv_of([["Amount"], *([value] for value in values)])},
        column_types={"posts": {"amount": "number"}},
    )
    assert column_types(run, "posts")["amount"] == "number"
    written = records_as_written(run, "posts")
    assert [Decimal(record["amount"]) for record in written] == list(
        map(Decimal, values)
    )


# -- 2. NUL handled once, after decoding ------------------------------------------

ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8-bom": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "cp1252": lambda text: text.encode("cp1252"),
    "utf-16": lambda text: text.encode("utf-16"),
    "utf-16-le": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
}


def with_nul(rng: random.Random, value: str) -> str:
    spot = rng.randint(0, len(value))
    return value[:spot] + "\x00" * rng.randint(1, 3) + value[spot:]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_nul_is_dropped_in_every_encoding_and_named_once(
    stand_in: OktopostStandIn, encoding: str, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    header = ["Id", "Name", "Note"]
    rows = [[str(n), text_value(rng), text_value(rng)] for n in range(1, 60)]
    written = [list(row) for row in rows]
    nul_rows = sorted(rng.sample(range(len(rows)), rng.randint(1, 6)))
    for index in nul_rows:
        column = rng.choice([1, 2])
        written[index][column] = with_nul(rng, written[index][column])
        if rng.random() < 0.3:
            written[index][column] = f'"{written[index][column]}, quoted"'
            rows[index][column] += ", quoted"
    lines = [",".join(header)] + [",".join(row) for row in written]
    data = ENCODINGS[encoding]("\r\n".join(lines) + "\r\n")
    run = sync_members(stand_in, {MEMBER: data})

    assert run.returncode == 0, run.stderr[-2000:]
    got = [[r["id"], r["name"], r["note"]] for r in records_as_written(run, "posts")]
    assert got == rows
    first_line = nul_rows[0] + 2  # the header is line 1
    nul_notes = [w for w in warnings_of(run) if "NUL" in w]
    assert len(nul_notes) == 1
    assert (
        f"NUL characters were dropped from {len(nul_rows)} line(s), "
        f"the first line {first_line}"
    ) in nul_notes[0]


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.10", "3.11", "3.12", "3.13"])
def test_nul_reads_the_same_on_each_python(version: str) -> None:
    pythons = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python"))
    if not pythons:
        pytest.skip(f"no Python {version} here")
    rng = random.Random(7)  # noqa: S311 - reproducible test data
    rows = [["Id", "Name"]] + [
        [str(n), with_nul(rng, text_value(rng))] for n in range(9)
    ]
    text = "\r\n".join(",".join(row) for row in rows) + "\r\n"
    files = {name: encode(text).hex() for name, encode in ENCODINGS.items()}
    script = (
        "import io, json, sys\n"
        "from tap_oktopost.tables.csv_data import CsvSource\n"
        "out = {}\n"
        "for name, data in json.loads(sys.argv[1]).items():\n"
        "    source = CsvSource(io.BytesIO(bytes.fromhex(data)))\n"
        "    out[name] = [list(source.rows), source.repairs()]\n"
        "print(json.dumps(out))\n"
    )
    root = Path(__file__).resolve().parents[2]
    path = f"{root}{':'}{Path(anyascii.__file__).parent.parent}"
    done = subprocess.run(
        [str(pythons[-1]), "-c", script, json.dumps(files)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": path},
        check=True,
        timeout=60,
    )
    expected = [[cell.replace("\x00", "") for cell in row] for row in rows]
    for name, (got, repairs) in json.loads(done.stdout).items():
        assert got == expected, (version, name)
        assert (
            repairs[0] == "NUL characters were dropped from 9 line(s), the first line 2"
        )
    assert sys.version_info >= (3, 10)


# -- 3. Decoding by evidence -------------------------------------------------------


def damage(rng: random.Random, value: str) -> tuple[bytes, str]:
    """Give a value's UTF-8 bytes with one damaged spot, and the text it reads as."""
    kind = rng.choice(["cut", "lost lead", "stray"])
    spot = rng.randint(0, len(value))
    before, after = value[:spot].encode(), value[spot:].encode()
    if kind == "cut":
        return before + "😀".encode()[:-1] + b"x" + after, value[
            :spot
        ] + "\ufffdx" + value[spot:]
    if kind == "lost lead":
        return before + "ë".encode()[1:] + after, value[:spot] + "\ufffd" + value[spot:]
    return before + b"\xff" + after, value[:spot] + "\ufffd" + value[spot:]


@pytest.mark.parametrize("seed", range(12))
def test_a_damaged_utf8_file_stays_utf8_with_its_damage_named(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    rows = [[str(n), text_value(rng, WIDE_TEXT) + "ë"] for n in range(1, 400)]
    damaged = sorted(rng.sample(range(len(rows)), rng.randint(1, 4)))
    lines = [b"Id,Name"]
    expected = []
    for index, (key, name) in enumerate(rows):
        if index in damaged:
            data, read_as = damage(rng, name)
            lines.append(f"{key},".encode() + data)
            expected.append([key, read_as])
        else:
            lines.append(f"{key},{name}".encode())
            expected.append([key, name])
    run = sync_members(stand_in, {MEMBER: b"\r\n".join(lines) + b"\r\n"})

    assert run.returncode == 0, run.stderr[-2000:]
    got = [[r["id"], r["name"]] for r in records_as_written(run, "posts")]
    assert got == expected
    (note,) = warnings_of(run)
    assert note == (
        f"{len(damaged)} damaged byte sequence(s) that are not UTF-8 were replaced "
        f"by U+FFFD, the first on line {damaged[0] + 2}"
    )


@pytest.mark.parametrize("seed", range(8))
def test_a_cp1252_file_is_read_as_cp1252_throughout(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    rows = [["Id", "Name"]] + [
        [str(n), text_value(rng) + rng.choice("éü€“")] for n in range(1, 200)
    ]
    run = sync_members(stand_in, {MEMBER: csv_of(rows).encode("cp1252")})

    assert [[r["id"], r["name"]] for r in records_as_written(run, "posts")] == rows[1:]
    assert warnings_of(run) == [
        "text that is not UTF-8 was read as Windows-1252 (cp1252)"
    ]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_is_decided_by_its_bom(
    stand_in: OktopostStandIn, encoding: str, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    rows = [["Id", "Name"]] + [
        [str(n), text_value(rng, WIDE_TEXT)] for n in range(1, 50)
    ]
    run = sync_members(stand_in, {MEMBER: ENCODINGS[encoding](csv_of(rows))})
    assert [[r["id"], r["name"]] for r in records_as_written(run, "posts")] == rows[1:]
    assert not warnings_of(run)


# -- 5. Rows equal to the header are not data --------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_rows_equal_to_the_header_are_skipped_and_named(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    header = ["Post ID", "Clicks", "Rate", "Day"]
    rows: list[list[str]] = []
    repeats = []
    for number in range(1, rng.randint(20, 300)):
        if (number > 1 and rng.random() < 0.05) or number == 7:
            rows.append(header)
            repeats.append(number)
        else:
            rows.append(
                [
                    f"P{number}",
                    str(rng.randint(0, 9999)),
                    f"{rng.randint(0, 99)}.{rng.randint(0, 99):02d}",
                    f"2026-11-{rng.randint(1, 30):02d}",
                ]
            )
    run = sync_members(stand_in, {MEMBER: csv_of([header, *rows])})

    assert run.returncode == 0, run.stderr[-2000:]
    types = column_types(run, "posts")
    assert [types[n] for n in ("clicks", "rate", "day")] == [
        "integer",
        "number",
        "date",
    ]
    written = records_as_written(run, "posts")
    assert [[r["post_id"], r["clicks"], r["rate"], r["day"]] for r in written] == [
        row for row in rows if row != header
    ]
    assert [int(r["_sdc_row_number"]) for r in written] == [
        number for number in range(1, len(rows) + 1) if number not in repeats
    ]
    (note,) = warnings_of(run)
    shown = ", ".join(map(str, repeats[:20]))
    assert note.startswith(
        f"{len(repeats)} row(s) equal to the header were skipped, not loaded as "
        f"data: row(s) {shown}"
    )


# -- 6. The separator is read from the header line ---------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("separator", [",", ";", "\t", "|"])
def test_the_separator_is_read_from_the_header_line(
    stand_in: OktopostStandIn, separator: str, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    others = [s for s in ",;\t|" if s != separator]
    header = ["Post ID", f"Amount{rng.choice(others)} EUR", "Note"]
    rows = [header] + [
        [
            str(n),
            f"{rng.randint(0, 999)},{rng.randint(0, 99):02d}",  # a decimal comma
            text_value(rng) + rng.choice(["", *others, '"']) + text_value(rng),
        ]
        for n in range(1, rng.randint(2, 80))
    ]
    run = sync_members(stand_in, {MEMBER: csv_of(rows, separator)})

    assert run.returncode == 0, run.stderr[-2000:]
    (schema,) = run.schemas("posts")
    names = [n for n in schema["properties"] if n not in METADATA_PROPERTIES]
    assert [schema["properties"][n]["description"] for n in names] == header
    written = records_as_written(run, "posts")
    assert [[r[n] for n in names] for r in written] == rows[1:]
    assert all(r["_sdc_extra"] is None for r in written)


@pytest.mark.parametrize("seed", range(4))
def test_a_one_column_file_is_one_column_whatever_its_values_hold(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    rows = [["Message"]] + [
        [text_value(rng) + rng.choice(",;\t|") + text_value(rng)] for _ in range(30)
    ]
    run = sync_members(stand_in, {MEMBER: csv_of(rows)})
    assert [[r["message"]] for r in records_as_written(run, "posts")] == rows[1:]
    assert all(r["_sdc_extra"] is None for r in run.records("posts"))


@pytest.mark.parametrize(
    ("header", "after"),
    [
        ("Id;Name,Note", "1;2,3"),
        ("a|b;c", "1|2;3"),
        ("a\tb,c", ""),
        ('"x,y";a,b', "1;2,3"),
    ],
)
def test_a_header_whose_separator_cannot_be_told_fails_its_export_only(
    stand_in: OktopostStandIn, header: str, after: str
) -> None:
    stand_in.add_export(export_with(OTHER, {"Other.csv": "Id\r\n1\r\n"}))
    run = sync_members(stand_in, {MEMBER: f"{header}\r\n{after}\r\n"})

    assert run.returncode == 1
    assert [r["id"] for r in run.records("other")] == [1]
    assert not run.records("posts")
    assert f"Export {EXPORT}, file {MEMBER}" in run.stderr
    assert "cannot tell the CSV separator: the header line holds" in run.stderr


# -- 7. Lock and owner files are junk ------------------------------------------------

JUNK_NAMES = [
    "~${name}.csv",
    "~$${name}.csv",
    ".~lock.{name}.csv#",
    "~WRL{digits}.tmp",
    "~{name}.csv",
    ".#{name}.csv",
    "#{name}.csv#",
    "{name}.csv~",
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
    "Desktop.ini",
]


@pytest.mark.parametrize("seed", range(8))
def test_lock_and_owner_files_are_skipped_by_name_and_never_read(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    folder = rng.choice(["", "reports/", "2026/11/"])
    junk = {
        folder
        + pattern.format(name=name, digits=rng.randint(1000, 9999)): rng.randbytes(
            rng.randint(1, 300)
        )
        + b"\r\nGarbage,Column\r\n"
        for pattern in rng.sample(JUNK_NAMES, rng.randint(2, 6))
        for name in ["Posts"]
    }
    members: dict[str, str | bytes] = {
        f"{folder}Posts.csv": "Post ID,Clicks\r\nP1,5\r\n",
        **junk,
    }
    run = sync_members(stand_in, members)

    assert run.returncode == 0, run.stderr[-2000:]
    assert set(run.record_counts()) == {
        "posts",
        "export_list_metadata",
        "active_export_metadata",
    }
    properties = run.schemas("posts")[0]["properties"]
    columns = [name for name in properties if name not in METADATA_PROPERTIES]
    assert columns == ["post_id", "clicks"]
    (line,) = [
        line
        for line in run.stderr.splitlines()
        if "archive member(s) not loaded" in line
    ]
    for name in junk:
        assert name in line
    assert "lock, owner or backup file" in line or "file a file manager keeps" in line


@pytest.mark.parametrize(
    ("header", "after", "separator"),
    [
        ("Id;Amount,EUR", "1;2", ";"),
        ("Id,Amount;EUR", "1,2", ","),
        ("Id|Note\tx", "1|a", "|"),
        ("Id\tNote;x", "1\ta", "\t"),
    ],
)
def test_a_tie_in_the_header_is_settled_by_the_next_line(
    stand_in: OktopostStandIn, header: str, after: str, separator: str
) -> None:
    run = sync_members(stand_in, {MEMBER: f"{header}\r\n\r\n{after}\r\n"})
    assert run.returncode == 0, run.stderr[-2000:]
    (record,) = records_as_written(run, "posts")
    names = [
        n for n in run.schemas("posts")[0]["properties"] if n not in METADATA_PROPERTIES
    ]
    assert [record[name] for name in names] == after.split(separator)
    assert record["_sdc_extra"] is None

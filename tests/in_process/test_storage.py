"""Files as storage really serves them: not ZIP archives, odd Range answers, changes.

Each fault class is built from several generated instances, synced in process
against the stand-in: the export at fault fails alone with an ERROR naming it (or
loads, where the file is good), the others load, and its bookmark stays until a
sync with the fault gone loads it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import string
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tap_oktopost.api.exports import ExportRun
from tap_oktopost.archives.archive import (
    ARCHIVE_RATIO_CHECK_BYTES,
    DEFAULT_MAX_UNCOMPRESSED_BYTES,
    MAX_ARCHIVE_RATIO,
    RATIO_CHECK_BYTES,
    DamagedMemberError,
    ExportArchive,
    InflationLimitError,
    UnloadableExportError,
)
from tap_oktopost.tables.csv_data import METADATA_PROPERTIES
from tests.conftest import (
    TapRun,
    config_for,
    csv_text,
    discover_in_process,
    export_with,
    run_tap,
    sync_in_process,
)
from tests.end_to_end.test_sync import assert_no_secret
from tests.end_to_end.test_targets import (  # `project`: Meltano, a schema per test
    Project,
    project,  # noqa: F401
    row_counts,
    sql,
)
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, StandInExport, make_zip

BAD = "032000000000201"
GOOD = "032000000000202"
GZIPPED = "032000000000203"
RUN_DATE = "2026-11-30 10:00:00"
RUN_AT = "2026-11-30T10:00:00+00:00"


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries wait no real time here: the waits are recorded instead."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def seeded(seed: int) -> random.Random:
    """Test data, repeatable: not for secrets."""
    return random.Random(seed)  # noqa: S311


def random_table(
    rng: random.Random, rows: int, columns: int | None = None
) -> list[list[str]]:
    """A header of distinct words and rows of ids, counts and text."""
    count = columns or rng.randint(2, 6)
    header = [f"{word.title()} {index}" for index, word in enumerate(words(rng, count))]
    lines = [header]
    for number in range(rows):
        row = [str(number), *(" ".join(words(rng, 3)) for _ in range(count - 1))]
        lines.append(row)
    return lines


def words(rng: random.Random, count: int) -> list[str]:
    return [
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9)))
        for _ in range(count)
    ]


def column_of(cell: str) -> str:
    return cell.lower().replace(" ", "_")


def assert_rows(run: TapRun, stream: str, table: list[list[str]]) -> None:
    """Every row of the table arrived in the stream, value for value."""
    header, *rows = table
    records = run.records(stream)
    assert len(records) == len(rows)
    got = sorted(
        (record["_sdc_row_number"], [str(record[column_of(c)]) for c in header])
        for record in records
    )
    assert [values for _, values in got] == rows


def good_export() -> tuple[StandInExport, list[list[str]]]:
    table = random_table(seeded(0), 12, columns=3)
    return export_with(GOOD, {"2026-11-30-Clicks.csv": csv_text(table)}, RUN_DATE), (
        table
    )


def with_good_export(stand_in: OktopostStandIn) -> list[list[str]]:
    export, table = good_export()
    stand_in.add_export(export)
    return table


def assert_failed_alone(
    stand_in: OktopostStandIn, run: TapRun, good: list[list[str]], said: str
) -> None:
    """The export at fault has one ERROR naming it and keeps its bookmark."""
    assert run.returncode != 0
    errors = [
        line
        for line in run.stderr.splitlines()
        if (line.startswith("ERROR") or "| ERROR " in line)  # in process, or CLI
        and f"Export {BAD}" in line
        and said in line
        and "Exports failed" not in line
    ]
    assert len(errors) == 1, run.stderr[-3000:]
    assert run.bookmark(BAD) is None
    assert run.bookmark(GOOD) == RUN_AT
    assert_rows(run, "clicks", good)
    assert_no_secret(stand_in, run)


# -- files that are not ZIP archives ---------------------------------------------


def html_page(rng: random.Random) -> bytes:
    doctype = rng.choice(["<!DOCTYPE html>", "<!doctype HTML>", ""])
    title = " ".join(words(rng, 4))
    return (
        f"{rng.choice(['', ' ', chr(10)])}{doctype}<html><head><title>{title}"
        f"</title></head><body>Access blocked by policy</body></html>"
    ).encode()


def binary_blob(rng: random.Random) -> bytes:
    return rng.choice([b"\x7fELF", b"\x89PNG", b"\x00\x01\x02\x03"]) + rng.randbytes(
        rng.randint(100, 200_000)
    )


NOT_FILES = {
    "html": (html_page, "an HTML page"),
    "xml": (
        lambda rng: b"<?xml version='1.0'?><Error><Code>Blocked</Code></Error>",
        "an XML or HTML document",
    ),
    "binary": (binary_blob, "a file of unknown kind"),
    "empty": (lambda rng: b"", "an empty file"),
    "gzip of html": (
        lambda rng: gzip.compress(html_page(rng)),
        "gzip data holding an HTML page",
    ),
    "json": (
        lambda rng: (
            f'{{"Code": "AccessDenied", "Message": "{" ".join(words(rng, 5))}", '
            '"RequestId": "1"}'
        ).encode(),
        "a JSON document",
    ),
    "prose": (
        lambda rng: ("Service unavailable\n" + " ".join(words(rng, 30))).encode(),
        "text that is not CSV with a header line",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", sorted(NOT_FILES))
def test_a_body_that_is_no_export_file_fails_its_export_after_fresh_links(
    stand_in: OktopostStandIn, kind: str, seed: int
) -> None:
    make, said = NOT_FILES[kind]
    body = make(seeded(seed))
    good = with_good_export(stand_in)
    table = random_table(seeded(seed + 100), 7)
    stand_in.add_export(
        StandInExport(
            id=BAD,
            last_run_date=RUN_DATE,
            archive=body,
            archive_name="2026-11-30-Posts-Report.zip",
        )
    )
    config = config_for(stand_in, max_retries=1)
    run = sync_in_process(config)

    assert_failed_alone(stand_in, run, good, f"came as {said}")
    links = {
        r.path for r in stand_in.downloads() if r.path.startswith(f"/storage/{BAD}")
    }
    assert len(links) >= 2  # retried with a fresh link
    assert "X-Amz-Signature" not in run.stderr

    stand_in.set_run(BAD, make_zip({"2026-11-30-Posts.csv": csv_text(table)}), RUN_DATE)
    again = sync_in_process(config, state=run.final_state)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_rows(again, "posts", table)
    assert again.bookmark(BAD) == RUN_AT
    assert again.records("clicks") == []


@pytest.mark.slow
def test_through_the_command_line_a_block_page_fails_its_export_and_loads_later(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    good = with_good_export(stand_in)
    table = random_table(seeded(42), 20)
    stand_in.add_export(
        StandInExport(id=BAD, last_run_date=RUN_DATE, archive=html_page(seeded(42)))
    )
    config = config_for(stand_in, max_retries=1)
    run = run_tap(config, tmp_path, check=False, env={"LOGLEVEL": "DEBUG"})

    assert run.returncode == 1
    assert_failed_alone(stand_in, run, good, "came as an HTML page")
    assert "Traceback" not in run.stderr

    stand_in.set_run(BAD, make_zip({"2026-11-30-Posts.csv": csv_text(table)}), RUN_DATE)
    again = run_tap(config, tmp_path, state=run.final_state)
    assert_rows(again, "posts", table)
    assert again.bookmark(BAD) == RUN_AT


ARCHIVE_KINDS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "bzip2": (bz2.compress, "a bzip2 file"),
    "xz": (lzma.compress, "an xz file"),
    "7z": (lambda data: b"7z\xbc\xaf\x27\x1c\x00\x04" + data, "a 7-Zip archive"),
    "rar": (lambda data: b"Rar!\x1a\x07\x01\x00" + data, "a RAR archive"),
}


@pytest.mark.parametrize("kind", sorted(ARCHIVE_KINDS))
def test_an_archive_of_a_kind_the_tap_does_not_read_fails_its_export_by_name(
    stand_in: OktopostStandIn, kind: str
) -> None:
    pack, said = ARCHIVE_KINDS[kind]
    good = with_good_export(stand_in)
    text = csv_text(random_table(seeded(len(kind)), 30)).encode()
    stand_in.add_export(
        StandInExport(id=BAD, last_run_date=RUN_DATE, archive=pack(text))
    )
    run = sync_in_process(config_for(stand_in))

    assert_failed_alone(stand_in, run, good, f"its last run's file is {said}")
    assert "retry" not in run.stderr  # no fresh link makes it another kind


def single_files(seed: int) -> list[tuple[str, bool, str]]:
    """(link file name, gzipped, table) of files holding one CSV table."""
    rng = seeded(seed)
    stem = rng.choice(["Reach", "Post Stats", "Clicks_By_Day"])
    table = column_of(stem)
    return [
        (f"2026-11-{rng.randint(10, 30)}-{stem}.csv.gz", True, table),
        (f"{stem}.csv", False, table),
        (f"2026-11-30-{stem}.CSV.GZ", True, table),
        (f"2026-11-30-{stem}.zip", True, table),  # named as a ZIP, holding gzip CSV
        (f"2026-11-30-{stem}.txt", False, table),  # a CSV header tells it
    ]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("case", range(5))
def test_a_gzipped_or_plain_csv_file_loads_as_the_one_table_it_holds(
    stand_in: OktopostStandIn, seed: int, case: int
) -> None:
    name, gzipped, stream = single_files(seed)[case]
    rng = seeded(seed * 10 + case)
    # Some files pass the first Range read's 64 KiB, so discovery reads on remotely.
    table = random_table(rng, rng.choice([5, 300, 4000]))
    text = csv_text(table, rng.choice(["\r\n", "\n"])).encode(
        rng.choice(["utf-8", "utf-8-sig"])
    )
    body = gzip.compress(text) if gzipped else text
    good = with_good_export(stand_in)
    stand_in.add_export(
        StandInExport(id=BAD, last_run_date=RUN_DATE, archive=body, archive_name=name)
    )
    run = sync_in_process(config_for(stand_in))

    assert run.returncode == 0, run.stderr[-3000:]
    assert_rows(run, stream, table)
    assert {r["_sdc_source_file"] for r in run.records(stream)} == {name}
    assert_rows(run, "clicks", good)
    assert run.bookmark(BAD) == RUN_AT
    assert "Nothing to load" not in run.stderr


@pytest.mark.parametrize("seed", range(4))
def test_csv_gz_members_of_a_zip_load_like_csv_members(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rng = seeded(seed)
    reach = random_table(rng, rng.randint(1, 50))
    posts = random_table(rng, rng.randint(1, 50))
    folder = rng.choice(["", "reports/", "out/2026/"])
    members: dict[str, str | bytes] = {
        f"{folder}2026-11-30-Reach.csv.gz": gzip.compress(csv_text(reach).encode()),
        "2026-11-30-Posts.csv": csv_text(posts),
    }
    stand_in.add_export(export_with(BAD, members, RUN_DATE))
    run = sync_in_process(config_for(stand_in))

    assert run.returncode == 0, run.stderr[-3000:]
    assert_rows(run, "reach", reach)
    assert_rows(run, "posts", posts)
    assert "not a CSV file" not in run.stderr


def test_a_gzip_file_that_breaks_off_fails_its_export_naming_the_file(
    stand_in: OktopostStandIn,
) -> None:
    good = with_good_export(stand_in)
    text = csv_text(random_table(seeded(3), 3000)).encode()
    body = gzip.compress(text)[:-200]  # the end of the deflate data is missing
    stand_in.add_export(
        StandInExport(
            id=BAD, last_run_date=RUN_DATE, archive=body, archive_name="Reach.csv.gz"
        )
    )
    run = sync_in_process(config_for(stand_in, max_retries=0))

    assert_failed_alone(stand_in, run, good, "file Reach.csv.gz")


@pytest.mark.parametrize("name", ["", ".csv", ".csv.gz"])
def test_a_csv_file_whose_name_makes_no_table_fails_its_export(
    stand_in: OktopostStandIn, name: str
) -> None:
    good = with_good_export(stand_in)
    text = csv_text(random_table(seeded(len(name)), 5)).encode()
    stand_in.add_export(
        StandInExport(
            id=BAD,
            last_run_date=RUN_DATE,
            archive=gzip.compress(text) if name.endswith(".gz") else text,
            archive_name=name,
        )
    )
    run = sync_in_process(config_for(stand_in))

    assert_failed_alone(stand_in, run, good, "to name its table after")


# -- Range reads on real storage ---------------------------------------------------


RANGE_STYLES = ["strict", "strict-bare", "refuse", "first-only", "ignored"]


@pytest.mark.parametrize("style", RANGE_STYLES)
@pytest.mark.parametrize("rows", [1, 40, 3000])
def test_storage_refusing_or_ignoring_range_falls_back_to_a_whole_download(
    stand_in: OktopostStandIn, style: str, rows: int
) -> None:
    if style == "ignored":
        stand_in.honour_range = False
    else:
        stand_in.range_style = style
    table = random_table(seeded(rows), rows)
    # Random text: the archive of 3000 rows is past the first Range read's size.
    members = {"2026-11-30-Posts.csv": csv_text(table)}
    stand_in.add_export(export_with(BAD, members, RUN_DATE))
    good = with_good_export(stand_in)
    config = config_for(stand_in)
    catalog = discover_in_process(config)
    (posts,) = [s for s in catalog["streams"] if s["tap_stream_id"] == "posts"]
    assert {column_of(c) for c in table[0]} <= set(posts["schema"]["properties"])

    run = sync_in_process(config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert_rows(run, "posts", table)
    assert_rows(run, "clicks", good)
    assert run.bookmark(BAD) == RUN_AT
    assert "Discovery skips" not in run.stderr


def versions(seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """Two files of one export with different columns, each past 64 KiB zipped."""
    rng = seeded(seed)
    first = random_table(rng, 4000, columns=3)
    second = random_table(rng, 4000, columns=4)
    return first, second


@pytest.mark.slow
@pytest.mark.parametrize("etag", ["strong", "weak", "none"])
@pytest.mark.parametrize("after", [1, 2, 3, 4])
def test_a_file_replaced_while_discovery_reads_it_gives_one_versions_columns(
    stand_in: OktopostStandIn, after: int, etag: str
) -> None:
    stand_in.etag_style = etag
    first, second = versions(after)
    stand_in.add_export(
        export_with(BAD, {"2026-11-30-Posts.csv": csv_text(first)}, RUN_DATE)
    )
    replacement = make_zip({"2026-11-30-Posts.csv": csv_text(second)})
    stand_in.replace_after(BAD, after, replacement)
    config = config_for(stand_in, whole_file_discovery_bytes=0)  # Range reads
    catalog = discover_in_process(config)

    (posts,) = [s for s in catalog["streams"] if s["tap_stream_id"] == "posts"]
    columns = set(posts["schema"]["properties"]) - set(METADATA_PROPERTIES)
    served = [r for r in stand_in.downloads() if r.path.startswith(f"/storage/{BAD}")]
    # Head, central directory, then the member's rows past the head: a change
    # after one or two requests surfaces in the middle of discovery's reading.
    changed = len(served) > after
    assert changed or after > 2
    assert columns == {column_of(c) for c in (second if changed else first)[0]}
    blocks = [
        r for r in served if not r.headers.get("Range", "").startswith("bytes=0-")
    ]
    assert blocks
    assert all(("If-Range" in r.headers) == (etag == "strong") for r in blocks)
    if changed:
        run = sync_in_process(config, catalog=catalog)
        assert run.returncode == 0, run.stderr[-3000:]
        assert_rows(run, "posts", second)


@pytest.mark.slow
def test_a_file_that_keeps_changing_fails_discovery_of_its_export_only(
    stand_in: OktopostStandIn,
) -> None:
    first, second = versions(9)
    stand_in.add_export(
        export_with(BAD, {"2026-11-30-Posts.csv": csv_text(first)}, RUN_DATE)
    )
    with_good_export(stand_in)
    files = [make_zip({"2026-11-30-Posts.csv": csv_text(t)}) for t in (first, second)]
    for number in range(1, 60):  # a new version at every request
        stand_in.replace_after(BAD, 0, files[number % 2])
    config = config_for(stand_in, max_retries=2, whole_file_discovery_bytes=0)
    catalog = discover_in_process(config)

    names = {s["tap_stream_id"] for s in catalog["streams"]}
    assert "clicks" in names
    assert "posts" not in names


# -- an archive-wide inflation guard -----------------------------------------------

MiB = 1024 * 1024


def repetitive_csv(
    size: int, gap: int | None, rng: random.Random, width: int = 2
) -> bytes:
    """CSV of `size` bytes deflating about 1000 times, less with a digit per `gap`.

    Its rows hold `width` bytes.
    """
    row = b"0," + b"0" * (width - 2) + b"\n"
    data = bytearray(b"Id,Text\n" + row * (size // len(row)))
    if gap is not None:
        for index in range(rng.randrange(gap), len(data) - 1, gap):
            if data[index] == ord("0"):
                data[index] = rng.randrange(ord("1"), ord("9") + 1)
    return bytes(data)


def claim_no_compression(packed: bytes) -> bytes:
    """Make every central directory entry claim its member is stored as is."""
    data = bytearray(packed)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        claimed = data[at + 24 : at + 28]  # the uncompressed size
        data[at + 20 : at + 24] = claimed
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


def bomb(seed: int) -> tuple[bytes, bool, int, int, str]:
    """A ZIP of many members, each under the per-member check's size floor.

    Gives the archive, whether its central directory hides the compression (a lie,
    or gzip members), the CSV bytes it holds, the compressed bytes they take, and
    its shape for messages.
    """
    rng = seeded(seed)
    count = rng.randint(4, 40)
    size = rng.randint(max(40 * MiB // count, MiB), RATIO_CHECK_BYTES - MiB)
    gap = rng.choice([None, 3000, 6000])
    gzipped = rng.random() < 0.3
    content = repetitive_csv(size, gap, rng)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as packed:
        for number in range(count):
            if gzipped:  # stored gzip files: only gzip compresses
                packed.writestr(
                    f"Part-{number}.csv.gz",
                    gzip.compress(content, 6),
                    compress_type=zipfile.ZIP_STORED,
                )
            else:
                packed.writestr(f"Part-{number}.csv", content)
        compressed = sum(info.compress_size for info in packed.infolist())
        lie = not gzipped and rng.random() < 0.5
        if lie:  # zipfile reads ahead by the claimed size: give it bytes to read
            padding = rng.randbytes(2 * MiB)
            packed.writestr("padding.bin", padding, compress_type=zipfile.ZIP_STORED)
    data = claim_no_compression(buffer.getvalue()) if lie else buffer.getvalue()
    shape = f"{count} x {size} bytes, gap {gap}, gzip {gzipped}, lying {lie}"
    return data, lie or gzipped, count * len(content), compressed, shape


def archive_at(tmp_path: Path, data: bytes) -> ExportArchive:
    path = tmp_path / "run.zip"
    path.write_bytes(data)
    detail = {"Id": BAD, "Type": "Posts", "LastRunDate": RUN_DATE}
    return ExportArchive(ExportRun.from_detail(BAD, detail), path)


def inflate_all(archive: ExportArchive, delivered: list[int]) -> None:
    """Read every table member in turn, noting the bytes delivered."""
    for members in archive.tables.values():
        for member in members:
            with archive.open_member(member) as stream:
                for piece in iter(lambda: stream.read(MiB), b""):
                    delivered.append(len(piece))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_a_bomb_of_many_small_members_is_refused_by_the_archive_wide_ratio(
    tmp_path: Path, seed: int
) -> None:
    data, claims_hide_it, inflated, compressed, shape = bomb(seed)
    assert inflated > ARCHIVE_RATIO_CHECK_BYTES
    assert inflated > compressed * MAX_ARCHIVE_RATIO, shape
    archive = archive_at(tmp_path, data)
    assert len(archive.tables) > 3, shape
    if not claims_hide_it:
        with pytest.raises(UnloadableExportError) as refused:
            archive.check_limits(DEFAULT_MAX_UNCOMPRESSED_BYTES)
        assert "zip bomb of many members" in str(refused.value)
        assert str(refused.value).startswith(f"Export {BAD} (Posts): ")
        return
    archive.check_limits(DEFAULT_MAX_UNCOMPRESSED_BYTES)  # the claims pass
    delivered: list[int] = []
    with pytest.raises((InflationLimitError, DamagedMemberError)) as raised:
        inflate_all(archive, delivered)
    message = str(raised.value)
    assert message.startswith(f"Export {BAD} (Posts), file Part-"), shape
    if isinstance(raised.value, DamagedMemberError):
        # Python 3.13's zipfile refuses a member lying about its size itself.
        assert sys.version_info >= (3, 13), message
        assert "(possible zip bomb)" in message
    else:
        assert f"past {MAX_ARCHIVE_RATIO} times: refusing a likely zip bomb" in message
    assert sum(delivered) <= ARCHIVE_RATIO_CHECK_BYTES + MiB


@pytest.mark.slow
@pytest.mark.parametrize(("width", "cycle"), [(1000, 1000), (1000, 27), (2000, 100)])
def test_honest_repetitive_csv_of_50_mb_loads_whole(
    stand_in: OktopostStandIn, width: int, cycle: int
) -> None:
    rows = 50_000_000 // width
    lines = [f"{n % cycle},2026-11-{1 + n % 27:02d},{'0' * width}" for n in range(rows)]
    text = ("Id,Day,Text\n" + "\n".join(lines) + "\n").encode()
    members: dict[str, str | bytes] = {"2026-11-30-Wide.csv": text}
    packed = make_zip(members)
    assert 150 < len(text) / len(packed) < MAX_ARCHIVE_RATIO
    stand_in.add_export(StandInExport(id=BAD, last_run_date=RUN_DATE, archive=packed))
    run = sync_in_process(config_for(stand_in))

    assert run.returncode == 0, run.stderr[-3000:]
    records = run.records("wide")
    assert len(records) == rows
    assert records[-1]["day"] == f"2026-11-{1 + (rows - 1) % 27:02d}"
    assert run.bookmark(BAD) == RUN_AT


@pytest.mark.slow
def test_a_lying_bomb_fails_its_export_alone_and_loads_once_replaced(
    stand_in: OktopostStandIn,
) -> None:
    good = with_good_export(stand_in)
    rng = seeded(5)
    content = repetitive_csv(8 * MiB, None, rng, width=20_000)
    assert len(content) > len(zlib.compress(content)) * MAX_ARCHIVE_RATIO
    members: dict[str, str | bytes] = {
        f"2026-11-30-Posts-{n}.csv": content for n in range(8)
    }
    members["padding.bin"] = rng.randbytes(2 * MiB)  # for zipfile to read ahead
    packed = claim_no_compression(make_zip(members))
    stand_in.add_export(StandInExport(id=BAD, last_run_date=RUN_DATE, archive=packed))
    config = config_for(stand_in)
    run = sync_in_process(config)

    if sys.version_info >= (3, 13):
        # Python 3.13's zipfile refuses a member lying about its size as discovery
        # reads it: the export is left out of the catalog, so the sync fails it.
        assert "(possible zip bomb)" in run.stderr
        assert_failed_alone(stand_in, run, good, "files for tables the catalog lacks")
    else:
        assert_failed_alone(stand_in, run, good, "a likely zip bomb of many members")
    table = random_table(rng, 9)
    stand_in.set_run(
        BAD, make_zip({"2026-11-30-Posts-1.csv": csv_text(table)}), RUN_DATE
    )
    again = sync_in_process(config, state=run.final_state)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_rows(again, "posts_1", table)
    assert again.bookmark(BAD) == RUN_AT


@pytest.mark.slow
@pytest.mark.parametrize(("size", "gap"), [(40 * MiB, None), (80 * MiB, 6000)])
def test_a_gzipped_csv_file_inflating_like_a_bomb_is_refused_as_it_is_read(
    tmp_path: Path, size: int, gap: int | None
) -> None:
    path = tmp_path / "run.csv.gz"
    path.write_bytes(gzip.compress(repetitive_csv(size, gap, seeded(size)), 6))
    detail = {"Id": BAD, "Type": "Posts", "LastRunDate": RUN_DATE}
    run = ExportRun.from_detail(BAD, detail)
    archive = ExportArchive(run, path, single="2026-11-30-Reach.csv.gz", gzipped=True)
    assert archive.tables == {"reach": ["2026-11-30-Reach.csv.gz"]}
    delivered: list[int] = []

    with pytest.raises(InflationLimitError) as raised:
        inflate_all(archive, delivered)
    assert str(raised.value).startswith(
        f"Export {BAD} (Posts), file 2026-11-30-Reach.csv.gz: "
    )
    assert "refusing a likely zip bomb" in str(raised.value)
    assert sum(delivered) <= ARCHIVE_RATIO_CHECK_BYTES + MiB


# -- through Meltano into PostgreSQL ----------------------------------------------


@pytest.mark.slow
def test_meltano_into_postgres_loads_gzip_csv_and_recovers_a_blocked_download(
    project: Project,  # noqa: F811 - the fixture imported above
) -> None:
    stand_in = project.stand_in
    good = with_good_export(stand_in)
    reach = random_table(seeded(77), 30, columns=3)
    posts = random_table(seeded(78), 25, columns=3)
    stand_in.add_export(
        StandInExport(
            id=GZIPPED,
            last_run_date=RUN_DATE,
            archive=gzip.compress(csv_text(reach).encode()),
            archive_name="2026-11-30-Reach.csv.gz",
        )
    )
    stand_in.add_export(
        StandInExport(id=BAD, last_run_date=RUN_DATE, archive=html_page(seeded(79)))
    )
    first = project.run("target-postgres", check=False)

    assert first.returncode != 0
    assert f"Export {BAD} (Posts): its last run's file" in first.stderr
    counts = row_counts(project.schema)
    assert counts["clicks"] == len(good) - 1
    assert counts["reach"] == len(reach) - 1
    assert "posts" not in counts
    bookmarks = project.bookmarks("target-postgres")
    assert bookmarks[GOOD] == RUN_AT
    assert bookmarks[GZIPPED] == RUN_AT
    assert bookmarks.get(BAD) is None

    stand_in.set_run(BAD, make_zip({"2026-11-30-Posts.csv": csv_text(posts)}), RUN_DATE)
    project.run("target-postgres")
    counts = row_counts(project.schema)
    assert counts["posts"] == len(posts) - 1
    assert counts["reach"] == len(reach) - 1  # loaded once, not again
    assert project.bookmarks("target-postgres")[BAD] == RUN_AT
    reach_keys = sql(
        'select _sdc_row_number from :"s".reach order by 1', s=project.schema
    )
    assert [int(key) for (key,) in reach_keys] == list(range(1, len(reach)))

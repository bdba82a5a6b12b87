"""Archives read over Range equal archives downloaded; members are classified and safe.

Discovery reads an archive remotely, a few blocks at a time; the sync reads the
downloaded file. Both must see the same members with the same bytes whatever the
archive's layout, so the first test builds many archives at random (seeded) with
headers placed across the block edges of the remote reads.
"""

from __future__ import annotations

import io
import logging
import random
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tap_oktopost.api.errors import OktopostError
from tap_oktopost.api.exports import ExportRun
from tap_oktopost.archives.archive import DamagedMemberError, ExportArchive
from tap_oktopost.archives.download import ArchiveReadError, ArchiveStore, RemoteFile
from tap_oktopost.tables.csv_data import READ_ERRORS
from tap_oktopost.tables.names import table_name
from tests.conftest import config_for, csv_text, run_tap
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, StandInExport, make_zip

EXPORT = "032000000000001"
OTHER = "032000000000002"
HEAD = RemoteFile.HEAD_BYTES
BLOCK = RemoteFile.BLOCK_BYTES
DATE = (2026, 11, 27, 10, 0, 0)
LOCAL_HEADER = 30
DATA_DESCRIPTOR = 16


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries wait no real time here: the waits are recorded instead."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def fetch_run(stand_in: OktopostStandIn, export_id: str) -> ExportRun:
    got = requests.get(
        f"{stand_in.base_url}/bi-export/{quote(export_id, safe='')}",
        auth=(stand_in.account_id, stand_in.api_key),
        timeout=10,
    )
    return ExportRun.from_detail(export_id, got.json()["Export"])


def store_for(stand_in: OktopostStandIn, max_retries: int = 2) -> ArchiveStore:
    return ArchiveStore(
        lambda export_id: fetch_run(stand_in, export_id),
        timeout=10,
        max_retries=max_retries,
        rate_limit_wait=0,
        max_uncompressed_bytes=1 << 34,
        logger=logging.getLogger("tests.archives"),
        sleep=time.sleep,  # the `waits` fixture's recorder
    )


def serve(stand_in: OktopostStandIn, data: bytes, export_id: str = EXPORT) -> ExportRun:
    stand_in.add_export(
        StandInExport(id=export_id, last_run_date="2026-11-27 10:00:00", archive=data)
    )
    return fetch_run(stand_in, export_id)


def read_member(archive: ExportArchive, member: str) -> bytes:
    with archive.open_member(member) as stream:
        return stream.read()


def contents(archive: ExportArchive, every: int = 1) -> dict[str, Any]:
    """Everything discovery or a sync could see of an archive; bytes of `every` nth."""
    zip_file = archive.zip_file
    assert zip_file is not None
    entries = zip_file.infolist()
    members = [member for members in archive.tables.values() for member in members]
    return {
        "entries": [info.filename for info in entries],
        "bytes": [zip_file.read(info) for info in entries[::every]],
        "tables": archive.tables,
        "skipped": archive.skipped,
        "members": {
            member: read_member(archive, member) for member in members[::every]
        },
    }


def remote_and_local(
    stand_in: OktopostStandIn, data: bytes, every: int = 1
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read an archive over Range, as discovery does, and downloaded, as a sync does."""
    run = serve(stand_in, data)
    store = store_for(stand_in)
    remote = store.archive(run, headers_only=True)
    assert remote.path is None, "small enough to be downloaded whole: not remote"
    try:
        seen_remotely = contents(remote, every)
    finally:
        remote.delete()
    local = store.archive(run)
    assert local.path is not None
    try:
        return seen_remotely, contents(local, every)
    finally:
        store.discard(run.export_id)


class Unseekable(io.RawIOBase):
    """A stream `zipfile` cannot seek back in, so it writes data descriptors."""

    def __init__(self, sink: io.BytesIO) -> None:
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self.sink.write(data)


NAMES = ["Posts", "投稿", "Статистика", "Ümlaut Stats", "تقرير", "2026-11-27-Clicks"]
FOLDERS = ["", "reports/", "Отчёты/", "深い/フォルダ/", "a b/c,d/"]


def size_to_end_at(end: int, position: int, name: str, streamed: bool) -> int:
    """The data size that makes a member written at `position` end at `end`."""
    overhead = LOCAL_HEADER + len(name.encode()) + (DATA_DESCRIPTOR if streamed else 0)
    return end - position - overhead


def random_archive(rng: random.Random) -> bytes:
    """Stored and deflated members, some written as a stream, many ending near edges.

    A stored member's size is chosen so that what follows it (the next local header,
    or the central directory) starts just before a 16 KiB block edge or a 64 KiB
    mark, and so crosses it.
    """
    sink = io.BytesIO()
    streamed = rng.random() < 0.4
    target = rng.randint(HEAD + 1024, 6 * HEAD)
    cd_across_head = rng.random() < 0.3
    with zipfile.ZipFile(Unseekable(sink) if streamed else sink, "w") as archive:
        number = 0
        while True:
            number += 1
            base = "Posts" if number == 1 else rng.choice(NAMES)
            name = f"{rng.choice(FOLDERS)}{base}-{number}.csv"
            position = sink.tell()
            method = rng.choice((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED))
            last = False
            if cd_across_head and position > HEAD - 12_000:
                size = size_to_end_at(
                    HEAD - rng.randint(1, 40), position, name, streamed
                )
                method, last = zipfile.ZIP_STORED, True
            elif cd_across_head:
                size = rng.randint(1, max(1, min(10_000, HEAD - 12_000 - position)))
            elif method == zipfile.ZIP_STORED and rng.random() < 0.7:
                step = rng.choice((BLOCK, HEAD))
                end = (position // step + 2) * step - rng.randint(1, 29)
                size = size_to_end_at(end, position, name, streamed)
            else:
                size = rng.randint(1, 40_000)
            info = zipfile.ZipInfo(name, date_time=DATE)
            info.compress_type = method
            text = ",".join(rng.choices(NAMES, k=size // 8 + 1)).encode()[:size]
            data = text if method == zipfile.ZIP_DEFLATED else rng.randbytes(size)
            archive.writestr(info, data)
            if last or (not cd_across_head and sink.tell() >= target):
                break
    return sink.getvalue()


def edges_crossed(data: bytes) -> Counter[str]:
    """Count headers across a block edge or the head's end, to check a corpus."""
    crossed: Counter[str] = Counter()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        headers = [
            (info.header_offset, LOCAL_HEADER + len(info.filename.encode()))
            for info in archive.infolist()
        ]
        headers.append((archive.start_dir, len(data) - archive.start_dir))
        for number, (start, length) in enumerate(headers):
            edge = (start // BLOCK + 1) * BLOCK
            if start + length > edge:
                kind = "central directory" if number == len(headers) - 1 else "header"
                crossed[f"{kind} across {'head' if edge == HEAD else 'block'}"] += 1
        if archive.infolist()[0].flag_bits & 0x08:
            crossed["data descriptors"] += 1
    return crossed


@pytest.mark.slow
def test_remote_reads_equal_downloaded_reads_for_random_archives(
    stand_in: OktopostStandIn,
) -> None:
    rng = random.Random(20261127)  # noqa: S311 - test data, not secrets
    corpus = [random_archive(rng) for _ in range(50)]
    layouts = sum((edges_crossed(data) for data in corpus), Counter[str]())
    # The corpus covers what broke: each layout appears several times.
    for layout in (
        "header across block",
        "header across head",
        "central directory across head",
        "central directory across block",
        "data descriptors",
    ):
        assert layouts[layout] >= 3, (layout, layouts)

    for number, data in enumerate(corpus):
        remote, local = remote_and_local(stand_in, data)
        assert remote == local, f"archive {number} reads differently over Range"
        assert remote["members"], f"archive {number} has no table member"


def test_a_central_directory_across_the_head_end(stand_in: OktopostStandIn) -> None:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        name = "Part 0.csv"
        archive.writestr(name, b"x" * size_to_end_at(HEAD - 500, 0, name, False))
        for number in range(1, 10):
            archive.writestr(f"Part {number}.csv", f"id\n{number}\n")
    data = sink.getvalue()
    start_dir = zipfile.ZipFile(io.BytesIO(data)).start_dir
    assert start_dir < HEAD < len(data) - 22  # 22: the end record after it

    remote, local = remote_and_local(stand_in, data)

    assert remote == local
    assert len(remote["members"]) == 10


def test_a_local_header_across_a_block_edge(stand_in: OktopostStandIn) -> None:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        name = "First.csv"
        archive.writestr(name, b"x" * size_to_end_at(BLOCK - 10, 0, name, False))
        archive.writestr("Second.csv", b"id\n1\n")
        archive.writestr("Filler.csv", random.Random(1).randbytes(HEAD))  # noqa: S311
    data = sink.getvalue()
    second = zipfile.ZipFile(io.BytesIO(data)).getinfo("Second.csv")
    assert second.header_offset == BLOCK - 10

    remote, local = remote_and_local(stand_in, data)

    assert remote == local
    assert remote["members"]["Second.csv"] == b"id\n1\n"


@pytest.mark.slow
def test_a_zip64_archive_of_65601_members(stand_in: OktopostStandIn) -> None:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        for number in range(65_601):
            archive.writestr(f"part-{number:05d}/Posts.csv", f"id\n{number}\n")
    data = sink.getvalue()
    assert b"PK\x06\x06" in data[-200:]  # the ZIP64 end of central directory

    remote, local = remote_and_local(stand_in, data, every=100)

    assert remote == local
    assert len(remote["tables"]["posts"]) == 65_601
    assert remote["members"]["part-65600/Posts.csv"] == b"id\n65600\n"


@pytest.mark.parametrize(("status", "error"), [(503, "HTTP 503"), (None, "Error")])
def test_a_block_that_fails_once_is_retried(
    stand_in: OktopostStandIn,
    caplog: pytest.LogCaptureFixture,
    waits: list[float],
    status: int | None,
    error: str,
) -> None:
    data = make_zip({"Posts.csv": random.Random(2).randbytes(3 * HEAD)})  # noqa: S311
    run = serve(stand_in, data)
    stand_in.fail_next_block(status)

    archive = store_for(stand_in).archive(run, headers_only=True)

    assert read_member(archive, "Posts.csv") == zipfile.ZipFile(io.BytesIO(data)).read(
        "Posts.csv"
    )
    assert len(waits) == 1
    (retry,) = [r.getMessage() for r in caplog.records if "retry 1 of 2" in r.message]
    assert retry.startswith(f"Export {EXPORT}: reading http://127.0.0.1:")
    assert error in retry
    assert "X-Amz-Signature" not in retry


def test_a_block_that_keeps_failing_names_the_export(
    stand_in: OktopostStandIn,
) -> None:
    data = make_zip({"Posts.csv": random.Random(3).randbytes(3 * HEAD)})  # noqa: S311
    run = serve(stand_in, data)
    stand_in.fail_next_block(500, times=3)

    with pytest.raises(ArchiveReadError) as raised:
        store_for(stand_in, max_retries=2).archive(run, headers_only=True)

    message = str(raised.value)
    assert message.startswith(f"Export {EXPORT}: reading http://127.0.0.1:")
    assert "HTTP 500 from the file storage; still failing after retries" in message
    assert "X-Amz" not in message
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None


def test_a_block_refused_for_an_expired_link_is_read_with_a_fresh_one(
    stand_in: OktopostStandIn,
) -> None:
    data = make_zip({"Posts.csv": random.Random(4).randbytes(3 * HEAD)})  # noqa: S311
    run = serve(stand_in, data)
    stand_in.fail_next_block(403)
    stand_in.reset_log()

    archive = store_for(stand_in).archive(run, headers_only=True)
    read_member(archive, "Posts.csv")

    details = [r for r in stand_in.requests if r.server == "api"]
    links = {r.path for r in stand_in.downloads() if r.status == 206}
    assert len(details) == 1
    assert len(links) == 2  # the first link, then the fresh one


def test_members_not_loaded_are_listed_with_their_reasons(
    stand_in: OktopostStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    inner = make_zip({"Inner.csv": "id\n1\n", "deeper.zip": make_zip({"x.csv": "a"})})
    members: dict[str, str | bytes] = {
        "Campaigns.csv": "id\n1\n",
        "__MACOSX/._Campaigns.csv": b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X",
        "reports/.hidden.csv": "id\n2\n",
        "Empty.csv": b"",
        "---.csv": "id\n3\n",
        "Report.pdf": b"%PDF-1.4",
        "folder/": b"",
        "Line\nbreak\x1b.txt": b"x",
        "outer.zip": inner,
        "broken.zip": b"not a zip archive",
    }
    run = serve(stand_in, make_zip(members))

    archive = store_for(stand_in).archive(run)

    assert archive.tables == {
        "campaigns": ["Campaigns.csv"],
        "inner_table": ["outer.zip/Inner.csv"],
        # A name with no letter is named by a hash of its text, not dropped.
        str(table_name("---.csv")): ["---.csv"],
    }
    assert read_member(archive, "outer.zip/Inner.csv") == b"id\n1\n"
    assert archive.skipped == [
        ("__MACOSX/._Campaigns.csv", "macOS metadata"),
        ("reports/.hidden.csv", "hidden file"),
        ("Empty.csv", "empty file"),
        ("Report.pdf", "not a CSV file"),
        ("Line\nbreak\x1b.txt", "not a CSV file"),
        (
            "outer.zip/deeper.zip",
            "an archive inside an archive inside the export's archive",
        ),
        ("broken.zip", "a ZIP archive that cannot be read (BadZipFile)"),
    ]
    (line,) = [r for r in caplog.records if "not loaded" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert "\n" not in line.getMessage()
    assert "Line\\nbreak\\x1b.txt (not a CSV file)" in line.getMessage()
    assert line.getMessage().startswith(
        f"Export {EXPORT}: 7 archive member(s) not loaded: "
    )


def test_metadata_alone_is_an_info_line(
    stand_in: OktopostStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    members: dict[str, str | bytes] = {"A.csv": "id\n1\n", ".DS_Store": b"\x00"}
    store_for(stand_in).archive(serve(stand_in, make_zip(members)))

    (line,) = [r for r in caplog.records if "not loaded" in r.getMessage()]
    assert line.levelno == logging.INFO
    assert line.getMessage().endswith(
        "not loaded: .DS_Store (file a file manager keeps)"
    )


@pytest.mark.slow
def test_metadata_and_empty_files_neither_load_nor_block_the_run(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    members: dict[str, str | bytes] = {
        "Campaigns.csv": csv_text([["Id", "Name"], ["1", "Launch"]]),
        "__MACOSX/._Campaigns.csv": b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X  ",
        "Empty.csv": b"",
    }
    run = serve(stand_in, make_zip(members))
    catalog = run_tap(config_for(stand_in), tmp_path, discover=True).messages[0]
    synced = run_tap(config_for(stand_in), tmp_path, catalog=catalog)

    assert [s["tap_stream_id"] for s in catalog["streams"]][2:] == ["campaigns"]
    (record,) = synced.records("campaigns")
    assert (record["id"], record["name"]) == (1, "Launch")
    assert synced.bookmark(EXPORT) == run.run_at


def test_a_member_with_a_bad_crc_raises_a_read_error_the_others_read(
    stand_in: OktopostStandIn,
) -> None:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as writer:
        writer.writestr("Good.csv", "id\n1\n")
        writer.writestr("Bad.csv", "id\n2\n")
    data = bytearray(sink.getvalue())
    bad_at = zipfile.ZipFile(io.BytesIO(data)).getinfo("Bad.csv").header_offset
    data[bad_at + LOCAL_HEADER + len("Bad.csv") + 3] ^= 0x01  # "id\n2" -> "id\n3"
    store = store_for(stand_in)
    archive = store.archive(serve(stand_in, bytes(data)))

    with pytest.raises(READ_ERRORS) as raised:
        read_member(archive, "Bad.csv")

    assert isinstance(raised.value, DamagedMemberError)
    assert isinstance(raised.value, OktopostError)  # named, wherever it is caught
    assert str(raised.value).startswith(f"Export {EXPORT} (Posts), file Bad.csv: ")
    assert "Bad CRC-32" in str(raised.value)
    assert read_member(archive, "Good.csv") == b"id\n1\n"


@pytest.mark.slow
def test_a_small_member_with_a_bad_crc_fails_its_export_alone(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    data = bytearray(make_zip({"Posts.csv": csv_text([["Id"], ["1"]])}))
    data[data.index(b"PK\x01\x02") + 16] ^= 0xFF  # the central directory's CRC
    serve(stand_in, bytes(data))
    serve(stand_in, make_zip({"Posts.csv": csv_text([["Id"], ["2"]])}), OTHER)
    run = run_tap(config_for(stand_in), tmp_path, check=False)

    assert run.returncode != 0
    assert f"Export {EXPORT} (Posts), file Posts.csv: BadZipFile: Bad CRC-32" in (
        run.stderr
    )
    assert [record["id"] for record in run.records("posts")] == [2]
    assert (run.bookmark(EXPORT), run.bookmark(OTHER)) == (
        None,
        "2026-11-27T10:00:00+00:00",
    )


@pytest.mark.parametrize("export_id", ["../../x", "/absolute/x"])
def test_temporary_files_are_not_named_by_the_api(
    stand_in: OktopostStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    export_id: str,
) -> None:
    temp = tmp_path / "a" / "b"
    temp.mkdir(parents=True)
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    if export_id.startswith("/"):
        export_id = str(tmp_path / "absolute" / "x")
    run = serve(stand_in, make_zip({"Posts.csv": "id\n1\n"}), export_id)

    store = store_for(stand_in)  # its folder goes with it
    archive = store.archive(run)

    assert archive.path is not None
    assert archive.path.parent.parent == temp
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written == [archive.path]


def test_a_link_that_is_no_url_is_a_clear_error(stand_in: OktopostStandIn) -> None:
    run = ExportRun(EXPORT, "Posts", "2026-11-27T10:00:00+00:00", "http://[::1", {})

    with pytest.raises(OktopostError, match=f"^Export {EXPORT}: its LastRunFile is no"):
        store_for(stand_in).archive(run)


def test_a_redirect_loop_is_a_clear_error(stand_in: OktopostStandIn) -> None:
    run = serve(stand_in, make_zip({"Posts.csv": "id\n1\n"}))
    stand_in.fail_next("/storage/", 302, times=100, headers={"Location": str(run.link)})

    with pytest.raises(
        OktopostError, match="the storage redirects in a loop"
    ) as raised:
        store_for(stand_in).archive(run)
    assert "X-Amz" not in str(raised.value)
    assert raised.value.__cause__ is None

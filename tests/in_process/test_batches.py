"""BATCH messages in process: the files against the RECORDs, bookmarks, failures."""

from __future__ import annotations

import io
import json
import signal
import zipfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tap_oktopost import streams
from tap_oktopost.sync import batches as batch_files
from tap_oktopost.sync.ledger import read_bookmarks
from tap_oktopost.tables.csv_data import RecordBuilder
from tests.conftest import (
    TapRun,
    batch_file_lines,
    config_for,
    csv_text,
    deselect,
    discover_in_process,
    export_with,
    sync_in_process,
)
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, demo_exports

ITEMS_EXPORT = "032000000000001"
ITEMS = csv_text(
    [
        ["Id", "Amount", "Flag", "At", "Day", "Note"],
        ["12", "1.50", "true", "2026-11-27 10:00:00", "2026-11-27", "3"],
        ["7", "", "FALSE", "2026-11-27T10:00:00Z", "", "x,y"],
        ["8", "2.25", "false", "", "2026-11-28", "", "extra"],
        [
            "9",
            "12345678901234567890.123456789",
            "true",
            "2026-11-29 23:59:59",
            "2026-11-29",
            "é ü 😀",
        ],
    ]
)
CSV_STREAMS = ("posts", "post_stats", "campaigns", "items")
PINS = {"items": {"note": "integer", "amount": "number"}}
""""x,y" and the emoji go to _sdc_unfit_values; the 29-digit amount, text unless
pinned (a float would round it), is a number to the last digit."""


def batch_config(root: Path, size: int, compression: str = "gzip") -> dict[str, Any]:
    return {
        "encoding": {"format": "jsonl", "compression": compression},
        "storage": {"root": root.as_uri()},
        "batch_size": size,
    }


def serve_all(stand_in: OktopostStandIn) -> None:
    for export in demo_exports():
        stand_in.add_export(export)
    stand_in.add_export(export_with(ITEMS_EXPORT, {"Items.csv": ITEMS}))


def file_records(url: str) -> list[dict[str, Any]]:
    return [
        json.loads(line, parse_float=Decimal)
        for line in batch_file_lines(Path(urlparse(url).path))
    ]


def batches(run: TapRun, stream: str) -> list[list[dict[str, Any]]]:
    """Each BATCH message's records, in message order."""
    return [
        [record for url in message["manifest"] for record in file_records(url)]
        for message in run.messages
        if message["type"] == "BATCH" and message["stream"] == stream
    ]


def sent_records(run: TapRun, stream: str) -> list[dict[str, Any]]:
    """RECORD messages' records, numbers exactly as sent."""
    messages = (
        json.loads(line, parse_float=Decimal) for line in run.stdout.splitlines()
    )
    return [
        message["record"]
        for message in messages
        if message["type"] == "RECORD" and message["stream"] == stream
    ]


def comparable(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**record, "sync_timestamp": None} for record in records]


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_batch_files_hold_exactly_the_records_the_record_path_sends(
    stand_in: OktopostStandIn, tmp_path: Path, compression: str
) -> None:
    serve_all(stand_in)
    records = sync_in_process(config_for(stand_in, column_types=PINS))
    batched = sync_in_process(
        config_for(
            stand_in,
            column_types=PINS,
            batch_config=batch_config(tmp_path, 7, compression),
        )
    )

    assert batched.returncode == records.returncode == 0
    for stream in CSV_STREAMS:
        files = batches(batched, stream)
        assert files, stream
        assert all(1 <= len(rows) <= 7 for rows in files), stream
        assert not batched.records(stream)
        sent = comparable(row for rows in files for row in rows)
        assert sent == comparable(sent_records(records, stream)), stream
        assert batched.schemas(stream) == records.schemas(stream), stream
    items = [row for rows in batches(batched, "items") for row in rows]
    assert [row["_sdc_unfit_values"] for row in items] == [
        None,
        {"note": "x,y"},
        None,
        {"note": "é ü 😀"},
    ]
    assert items[3]["amount"] == Decimal("12345678901234567890.123456789")
    # The metadata streams stay RECORDs.
    assert batched.record_counts() == {
        "export_list_metadata": 5,
        "active_export_metadata": 4,
    }
    assert batched.final_state == records.final_state


def test_a_table_bookmark_moves_only_after_its_last_batch_message(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    serve_all(stand_in)
    run = sync_in_process(config_for(stand_in, batch_config=batch_config(tmp_path, 4)))

    checked = 0
    for stream in CSV_STREAMS:
        exports = {row["export_id"] for rows in batches(run, stream) for row in rows}
        for export_id in exports:
            last_batch = max(
                index
                for index, message in enumerate(run.messages)
                if message["type"] == "BATCH"
                and message["stream"] == stream
                and any(
                    row["export_id"] == export_id
                    for url in message["manifest"]
                    for row in file_records(url)
                )
            )
            first_bookmark = min(
                index
                for index, message in enumerate(run.messages)
                if message["type"] == "STATE"
                and (bookmark := read_bookmarks(message["value"]).get(export_id))
                and bookmark.tables.get(stream) is not None
            )
            assert last_batch < first_bookmark, (stream, export_id)
            checked += 1
    assert checked == 4


def test_a_sync_from_the_final_state_sends_nothing_new(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    serve_all(stand_in)
    config = config_for(stand_in, batch_config=batch_config(tmp_path / "files", 10))
    first = sync_in_process(config)
    first_downloads = stand_in.downloads()
    (tmp_path / "files" / "not-the-taps.json.gz").write_bytes(b"")
    again = sync_in_process(config, state=first.final_state)

    assert again.returncode == 0
    assert [m for m in first.messages if m["type"] == "BATCH"]
    assert not [m for m in again.messages if m["type"] == "BATCH"]
    assert not set(again.record_counts()) & set(CSV_STREAMS)
    assert not stand_in.downloads()[len(first_downloads) :]
    # The first sync's files were deleted as the second started; others are kept.
    assert [p.name for p in (tmp_path / "files").iterdir()] == ["not-the-taps.json.gz"]
    assert again.final_state == first.final_state


class BreakingBuilder(RecordBuilder):
    """Reads a file as damaged after its fifth row, as a disk or zip error would."""

    def records(self, rows: Iterable[list[str]]) -> Iterator[dict[str, Any]]:
        for number, record in enumerate(super().records(rows), start=1):
            if number > 5:
                raise zipfile.BadZipFile("Bad CRC-32 for file 'Posts.csv'")
            yield record


def test_a_file_breaking_mid_batch_fails_its_export_and_keeps_its_bookmark(
    stand_in: OktopostStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for export in demo_exports():  # each table has more than 5 rows
        stand_in.add_export(export)
    monkeypatch.setattr(streams, "RecordBuilder", BreakingBuilder)
    root = tmp_path / "files"
    run = sync_in_process(config_for(stand_in, batch_config=batch_config(root, 3)))

    assert run.returncode == 1
    assert "Bad CRC-32" in run.stderr
    assert "after data row 5" in run.stderr
    # Each table's first file (3 rows) went out; the file being written was deleted.
    sent = [url for m in run.messages if m["type"] == "BATCH" for url in m["manifest"]]
    assert sorted(Path(urlparse(url).path) for url in sent) == sorted(root.iterdir())
    assert all(len(file_records(url)) == 3 for url in sent)
    assert not [
        bookmark
        for bookmark in read_bookmarks(run.final_state).values()
        if bookmark.run or any(bookmark.tables.values())
    ]

    # Once the file reads again, the next sync sends every row of every table.
    monkeypatch.undo()
    again = sync_in_process(
        config_for(stand_in, batch_config=batch_config(root, 3)),
        state=run.final_state,
    )
    assert again.returncode == 0
    assert {
        stream: sum(len(rows) for rows in batches(again, stream))
        for stream in ("posts", "post_stats", "campaigns")
    } == {"posts": 40, "post_stats": 20, "campaigns": 10}


class SignalledWhileFreed(io.RawIOBase):
    """An I/O object that SIGTERM reaches while it is being freed.

    CPython reads `closed` as it frees an I/O object and drops any exception that
    raises, such as the SystemExit of a signal handler running just then: this is
    what a gzip or ZIP member file freed as SIGTERM arrives does to a sync.
    """

    @property
    def closed(self) -> bool:
        signal.raise_signal(signal.SIGTERM)
        return True


@pytest.mark.parametrize("signalled_file", [2, 3, 5, 9, 14])
def test_sigterm_whose_exit_python_drops_still_stops_the_sync_with_143(
    stand_in: OktopostStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signalled_file: int,
) -> None:
    """The handler's SystemExit can be lost where it is raised; the sync must still
    send nothing more but the state, and exit 128 + 15, never 0."""
    serve_all(stand_in)
    config = config_for(stand_in, batch_config=batch_config(tmp_path / "files", 4))
    full = sync_in_process(config)
    expected = batched_rows(full)
    assert len([m for m in full.messages if m["type"] == "BATCH"]) > signalled_file

    names_given = 0
    next_name = batch_files.BatchFiles._next_name

    def signalled_name(files: batch_files.BatchFiles) -> str:
        nonlocal names_given
        names_given += 1
        if names_given == signalled_file:
            SignalledWhileFreed()
        return next_name(files)

    monkeypatch.setattr(batch_files.BatchFiles, "_next_name", signalled_name)
    stopped = sync_in_process(config)
    monkeypatch.undo()

    assert stopped.returncode == 128 + signal.SIGTERM
    assert "Stopped by SIGTERM before the sync finished" in stopped.stderr
    # The files announced before the signal, then nothing but state.
    kinds = [message["type"] for message in stopped.messages]
    assert kinds.count("BATCH") == signalled_file - 1
    after_last_batch = len(kinds) - kinds[::-1].index("BATCH")
    assert set(kinds[after_last_batch:]) <= {"STATE"}
    # Resumed from that state, the rows add up to the full sync's.
    first_rows = batched_rows(stopped)
    resumed = sync_in_process(config, state=stopped.final_state)
    assert resumed.returncode == 0
    assert first_rows | batched_rows(resumed) == expected


def batched_rows(run: TapRun) -> set[str]:
    """Every row of the run's BATCH files as text, with its stream, but the sync's
    time; read before the next sync deletes the files."""
    return {
        json.dumps([stream, row], sort_keys=True, default=str)
        for stream in CSV_STREAMS
        for rows in batches(run, stream)
        for row in comparable(rows)
    }


def test_deselected_columns_and_stream_maps_shape_the_files(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    stand_in.add_export(export_with(ITEMS_EXPORT, {"Items.csv": ITEMS}))
    config = config_for(
        stand_in,
        stream_maps={"items": {"__filter__": "flag", "day": "__NULL__"}},
        batch_config=batch_config(tmp_path, 100),
    )
    catalog = discover_in_process(config)
    deselect(catalog, "items", "properties", "note")
    run = sync_in_process(config, catalog=catalog)

    [rows] = batches(run, "items")
    assert [row["id"] for row in rows] == [12, 9]
    assert all("note" not in row and "day" not in row for row in rows)


def test_a_batch_format_the_tap_cannot_write_is_refused_before_any_file(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    serve_all(stand_in)
    config = batch_config(tmp_path / "files", 10)
    config["encoding"]["format"] = "parquet"
    run = sync_in_process(config_for(stand_in, batch_config=config))

    assert run.returncode == 1
    assert "this tap writes jsonl" in run.stderr
    assert not list((tmp_path / "files").glob("*"))


def test_a_stream_sent_under_two_names_is_refused(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    stand_in.add_export(export_with(ITEMS_EXPORT, {"Items.csv": ITEMS}))
    run = sync_in_process(
        config_for(
            stand_in,
            stream_maps={"items_copy": {"__source__": "items"}},
            batch_config=batch_config(tmp_path, 100),
        )
    )

    assert run.returncode == 1
    assert "batch_config cannot send a stream under several names" in run.stderr
    assert not [m for m in run.messages if m["type"] == "BATCH"]


# -- storage.root: a missing folder is created and named, a wrong one refused ------

MISSING_ROOTS = [
    "batches",
    "a/b/c",
    "with space/é ü",
    "deep/" * 6 + "end",
    "dots.and-dashes_/x.y",
]


@pytest.mark.parametrize("relative", MISSING_ROOTS)
def test_a_missing_storage_root_is_created_and_named_in_the_log(
    stand_in: OktopostStandIn, tmp_path: Path, relative: str
) -> None:
    serve_all(stand_in)
    root = tmp_path / relative
    settings = batch_config(root, 7)
    settings["storage"]["root"] = f"file://{root}"  # as written in meltano.yml
    config = config_for(stand_in, batch_config=settings)

    run = sync_in_process(config)

    assert run.returncode == 0, run.stderr
    created = [line for line in run.stderr.splitlines() if "Created" in line]
    assert created == [
        f"INFO tap-oktopost: Created the BATCH files folder {root}"
        " (batch_config: storage.root)"
    ]
    urls = [url for m in run.messages if m["type"] == "BATCH" for url in m["manifest"]]
    assert urls
    assert {Path(urlparse(url).path).parent for url in urls} == {root}
    as_records = sync_in_process(config_for(stand_in))
    assert sum(len(file_records(url)) for url in urls) == sum(
        len(sent_records(as_records, stream)) for stream in CSV_STREAMS
    )

    again = sync_in_process(config, state=run.final_state)
    assert again.returncode == 0, again.stderr
    assert "Created the BATCH files folder" not in again.stderr


def file_in_the_way(tmp_path: Path) -> Path:
    (tmp_path / "taken").write_text("a file")
    return tmp_path / "taken"


def under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "plain").write_text("a file")
    return tmp_path / "plain" / "batches"


def with_a_name_too_long(tmp_path: Path) -> Path:
    return tmp_path / ("x" * 300) / "batches"


@pytest.mark.parametrize(
    ("wrong_root", "reason"),
    [
        (file_in_the_way, "File exists"),
        (under_a_file, "Not a directory"),
        (with_a_name_too_long, "File name too long"),
    ],
)
def test_a_storage_root_that_cannot_be_a_folder_stops_the_sync_naming_it(
    stand_in: OktopostStandIn, tmp_path: Path, wrong_root: Any, reason: str
) -> None:
    root = wrong_root(tmp_path)
    serve_all(stand_in)

    run = sync_in_process(config_for(stand_in, batch_config=batch_config(root, 7)))

    assert run.returncode == 1
    assert (
        f"batch_config: storage.root {root} cannot be created as a folder ({reason})"
        in run.stderr
    )
    assert not [m for m in run.messages if m["type"] == "BATCH"]
    assert not [stream for stream in CSV_STREAMS if sent_records(run, stream)]
    assert read_bookmarks(run.final_state) == {}

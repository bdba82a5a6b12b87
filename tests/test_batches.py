"""BATCH messages in process: the files against the RECORDs, bookmarks, failures."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tap_oktopost import streams
from tap_oktopost.csv_data import RecordBuilder
from tap_oktopost.ledger import read_bookmarks
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
from tests.oktopost_stand_in import OktopostStandIn, demo_exports

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

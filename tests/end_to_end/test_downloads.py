"""What discovery and syncs download, and the lean record path matching the SDK's."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import config_for, csv_text, deselect, export_with, run_tap
from tests.stand_ins.oktopost_stand_in import OktopostStandIn

EXPORT = "032000000000001"


ROWS = 150_000


def big_export(rows: int = ROWS) -> Any:
    """A posts-like archive of a few MB, deterministic: ids, counts, text, times."""
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=7)) for _ in range(500)
    ]
    lines = [["Post ID", "Clicks", "Text", "Created At"]]
    for number in range(rows):
        hour, minute = rng.randint(0, 23), rng.randint(0, 59)
        lines.append(
            [
                f"{rng.randint(0, 10**8):08d}",
                str(rng.randint(0, 999)),
                " ".join(rng.choices(words, k=rng.randint(3, 9))) + ', "quoted"',
                f"2026-11-{1 + number % 27:02d} {hour:02d}:{minute:02d}:00",
            ]
        )
    lines[-5][1] = "n/a"  # past the discovery sample: widened during the sync
    return export_with(EXPORT, {"2026-11-27-Posts.csv": csv_text(lines)})


@pytest.fixture
def big(stand_in: OktopostStandIn) -> OktopostStandIn:
    stand_in.add_export(big_export())
    return stand_in


def test_discovery_reads_a_sliver_of_the_archive_through_range(
    big: OktopostStandIn, tmp_path: Path
) -> None:
    archive_bytes = len(big_export().archive)
    config = config_for(big, whole_file_discovery_bytes=0)  # sampled by Range
    catalog = run_tap(config, tmp_path, discover=True).messages[0]

    assert big.bytes_served < 0.03 * archive_bytes
    assert all("Range" in request.headers for request in big.downloads())
    (posts,) = [s for s in catalog["streams"] if s["tap_stream_id"] == "posts"]
    assert posts["schema"]["properties"]["clicks"]["type"] == ["integer", "null"]

    big.reset_log()
    run = run_tap(config, tmp_path, catalog=catalog)
    (download,) = big.downloads()
    assert "Range" not in download.headers
    assert big.bytes_served == archive_bytes
    records = run.records("posts")
    assert len(records) == ROWS
    # The sample said integer; the whole file says text, before the first SCHEMA.
    assert records[0]["clicks"] == str(int(records[0]["clicks"]))
    assert records[-5]["clicks"] == "n/a"
    assert {
        tuple(schema["properties"]["clicks"]["type"]) for schema in run.schemas("posts")
    } == {("string", "null")}


def test_without_range_discovery_downloads_once_for_the_whole_sync(
    big: OktopostStandIn, tmp_path: Path
) -> None:
    big.honour_range = False
    run = run_tap(config_for(big), tmp_path)

    assert len(big.downloads()) == 1
    assert run.record_counts()["posts"] == ROWS


def test_lean_records_equal_the_sdk_path(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    text = csv_text(
        [
            ["Id", "Amount", "Flag", "At", "Day", "Note"],
            ["0012", "1.50", "true", "2026-11-27 10:00:00", "2026-11-27", 'say "hi"'],
            ["7", "", "FALSE", "2026-11-27T10:00:00Z", "", "x,y"],
            ["8", "2", "false", "", "2026-11-28", "", "extra"],
        ]
    )
    stand_in.add_export(export_with(EXPORT, {"Items.csv": text}))
    lean = run_tap(config_for(stand_in), tmp_path)
    # A stream map that renames nothing still sends records through the SDK.
    mapped = run_tap(
        config_for(stand_in, stream_maps={"items": {"note": "note"}}), tmp_path
    )

    def comparable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "sync_timestamp": None} for r in records]

    assert comparable(lean.records("items")) == comparable(mapped.records("items"))
    assert lean.records("items")[1] | {"sync_timestamp": None} == {
        "id": "7",
        "amount": None,
        "flag": False,
        "at": "2026-11-27T10:00:00+00:00",
        "day": None,
        "note": "x,y",
        "export_id": EXPORT,
        "sync_timestamp": None,
        "_sdc_source_file": "Items.csv",
        "_sdc_row_number": 2,
        "_sdc_export_run_at": "2026-11-27T10:00:00+00:00",
        "_sdc_extra": None,
        "_sdc_unfit_values": None,
    }


def test_a_deselected_column_is_not_sent(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    text = csv_text([["Id", "Secret Note"], ["1", "hide me"]])
    stand_in.add_export(export_with(EXPORT, {"Items.csv": text}))
    catalog = run_tap(config_for(stand_in), tmp_path, discover=True).messages[0]
    deselect(catalog, "items", "properties", "secret_note")
    run = run_tap(config_for(stand_in), tmp_path, catalog=catalog)

    (record,) = run.records("items")
    assert "secret_note" not in record
    assert record["id"] == 1

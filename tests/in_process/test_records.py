"""The record path in process: the fast writer against the SDK's, maps, metrics."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import (
    config_for,
    csv_text,
    deselect,
    discover_in_process,
    export_with,
    sync_in_process,
)
from tests.stand_ins.oktopost_stand_in import OktopostStandIn

EXPORT = "032000000000001"
ITEMS = csv_text(
    [
        ["Id", "Amount", "Flag", "At", "Day", "Note"],
        ["12", "1.50", "true", "2026-11-27 10:00:00", "2026-11-27", 'say "hi"'],
        ["7", "", "FALSE", "2026-11-27T10:00:00Z", "", "x,y"],
        ["8", "2", "false", "", "2026-11-28", "", "extra"],
    ]
)


def items_export(stand_in: OktopostStandIn) -> None:
    stand_in.add_export(export_with(EXPORT, {"Items.csv": ITEMS}))


def record_lines(stdout: str, stream: str) -> list[dict[str, Any]]:
    """RECORD messages as sent, but for the extraction times."""
    lines = [json.loads(line) for line in stdout.splitlines()]
    return [
        {
            **line,
            "time_extracted": None,
            "record": {**line["record"], "sync_timestamp": None},
        }
        for line in lines
        if line["type"] == "RECORD" and line["stream"] == stream
    ]


def test_fast_lines_equal_the_sdk_lines(stand_in: OktopostStandIn) -> None:
    items_export(stand_in)
    fast = sync_in_process(config_for(stand_in))
    # A map that changes nothing sends every record through the SDK's own path.
    sdk = sync_in_process(config_for(stand_in, stream_maps={"items": {"note": "note"}}))

    assert record_lines(fast.stdout, "items") == record_lines(sdk.stdout, "items")
    assert len(record_lines(fast.stdout, "items")) == 3


def test_a_stream_map_that_drops_a_column_is_honoured(
    stand_in: OktopostStandIn,
) -> None:
    items_export(stand_in)
    run = sync_in_process(
        config_for(stand_in, stream_maps={"items": {"note": "__NULL__"}})
    )

    assert [r["id"] for r in run.records("items")] == [12, 7, 8]
    assert all("note" not in r for r in run.records("items"))
    assert all("note" not in s["properties"] for s in run.schemas("items"))


def test_a_stream_map_that_filters_rows_is_honoured(
    stand_in: OktopostStandIn,
) -> None:
    items_export(stand_in)
    run = sync_in_process(
        config_for(stand_in, stream_maps={"items": {"__filter__": "flag"}})
    )

    assert [r["id"] for r in run.records("items")] == [12]


def test_flattening_goes_through_the_sdk(stand_in: OktopostStandIn) -> None:
    items_export(stand_in)
    run = sync_in_process(
        config_for(stand_in, flattening_enabled=True, flattening_max_depth=1)
    )

    # The SDK's flattening writes arrays as JSON text.
    assert [r["_sdc_extra"] for r in run.records("items")] == [None, None, '["extra"]']


def test_rows_keep_their_numbers_and_every_value(stand_in: OktopostStandIn) -> None:
    items_export(stand_in)
    records = sync_in_process(config_for(stand_in)).records("items")

    assert [r["_sdc_row_number"] for r in records] == [1, 2, 3]
    assert [r["_sdc_extra"] for r in records] == [None, None, ["extra"]]
    assert records[0] | {"sync_timestamp": None} == {
        "id": 12,
        "amount": 1.50,
        "flag": True,
        "at": "2026-11-27T10:00:00+00:00",
        "day": "2026-11-27",
        "note": 'say "hi"',
        "export_id": EXPORT,
        "sync_timestamp": None,
        "_sdc_source_file": "Items.csv",
        "_sdc_row_number": 1,
        "_sdc_export_run_at": "2026-11-27T10:00:00+00:00",
        "_sdc_extra": None,
        "_sdc_unfit_values": None,
    }


def test_a_deselected_column_is_not_sent(stand_in: OktopostStandIn) -> None:
    items_export(stand_in)
    config = config_for(stand_in)
    catalog = discover_in_process(config)
    deselect(catalog, "items", "properties", "note")
    run = sync_in_process(config, catalog=catalog)

    assert [r["id"] for r in run.records("items")] == [12, 7, 8]
    assert all("note" not in r for r in run.records("items"))


def test_the_record_count_metric_counts_every_row(stand_in: OktopostStandIn) -> None:
    items_export(stand_in)
    run = sync_in_process(config_for(stand_in))

    counts = [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in run.stderr.splitlines()
        if "METRIC: " in line and '"record_count"' in line
    ]
    items = [
        metric["value"] for metric in counts if metric["tags"].get("stream") == "items"
    ]
    assert sum(items) == 3


def test_the_settled_schema_reaches_the_stream_maps(
    stand_in: OktopostStandIn,
) -> None:
    """A contract with the SDK: SCHEMA messages come from the maps, built anew."""
    stand_in.add_export(
        export_with(EXPORT, {"Items.csv": csv_text([["Id"], ["1"], ["x"]])})
    )
    config = config_for(stand_in)
    catalog = discover_in_process(config)
    (items,) = [s for s in catalog["streams"] if s["tap_stream_id"] == "items"]
    items["schema"]["properties"]["id"]["type"] = ["integer", "null"]
    run = sync_in_process(config, catalog=catalog)

    assert {tuple(s["properties"]["id"]["type"]) for s in run.schemas("items")} == {
        ("string", "null")
    }
    assert [r["id"] for r in run.records("items")] == ["1", "x"]

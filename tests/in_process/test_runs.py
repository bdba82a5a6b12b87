"""Runs and bookmarks, synced in process: resumes, late selections, failures."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tap_oktopost.sync.ledger import ExportBookmark, read_bookmarks
from tap_oktopost.tables.csv_data import DEFAULT_KEY
from tests.conftest import (
    TapRun,
    config_for,
    csv_text,
    deselect,
    discover_in_process,
    export_with,
    sync_in_process,
)
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, demo_exports, make_zip

POSTS, CAMPAIGNS = "032000000000101", "032000000000102"
CSV_STREAMS = ("posts", "post_stats", "campaigns")


def keyed(records: list[dict[str, Any]], stream: str) -> dict[tuple[Any, ...], Any]:
    """Records by key, without the extraction time that differs between syncs."""
    key = DEFAULT_KEY if stream in CSV_STREAMS else ("Id",)
    return {
        tuple(record[column] for column in key): record | {"sync_timestamp": None}
        for record in records
    }


def rows_of(messages: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    return [
        message["record"]
        for message in messages
        if message["type"] == "RECORD" and message["stream"] == stream
    ]


def test_a_sync_killed_at_any_message_resumes_with_nothing_lost(
    demo: OktopostStandIn,
) -> None:
    config = config_for(demo)
    catalog = discover_in_process(config)
    clean = sync_in_process(config, catalog=catalog)
    assert clean.returncode == 0
    streams = {m["stream"] for m in clean.messages if m["type"] == "RECORD"}
    assert streams == {"export_list_metadata", "active_export_metadata", *CSV_STREAMS}

    resumed_from: dict[str, TapRun] = {}
    for cut in range(len(clean.messages) + 1):
        delivered = clean.messages[:cut]
        states = [m["value"] for m in delivered if m["type"] == "STATE"]
        state = states[-1] if states else None
        key = repr(state)
        if key not in resumed_from:
            resumed_from[key] = sync_in_process(config, state=state, catalog=catalog)
            assert resumed_from[key].returncode == 0
        resumed = resumed_from[key]
        for stream in streams:
            union = keyed(rows_of(delivered, stream), stream)
            union.update(keyed(resumed.records(stream), stream))
            assert union == keyed(clean.records(stream), stream), (cut, stream)
        assert resumed.final_state == clean.final_state, cut
    assert len(resumed_from) > 5  # the sync commits bookmarks as it goes


def test_a_final_state_downloads_nothing_and_sends_no_rows(
    demo: OktopostStandIn,
) -> None:
    config = config_for(demo)
    first = sync_in_process(config)
    demo.reset_log()
    second = sync_in_process(config, state=first.final_state)

    assert second.returncode == 0
    assert not demo.downloads()
    assert all(not second.records(stream) for stream in CSV_STREAMS)
    # Only the export that never ran is described again: it has no run to bookmark.
    assert [r["LastRunDate"] for r in second.records("active_export_metadata")] == [
        None
    ]
    assert second.final_state == first.final_state


def test_a_table_selected_later_gets_the_run_it_missed(demo: OktopostStandIn) -> None:
    config = config_for(demo)
    catalog = discover_in_process(config)
    without_stats = copy.deepcopy(catalog)
    deselect(without_stats, "post_stats")
    first = sync_in_process(config, catalog=without_stats)
    assert not first.records("post_stats")
    assert len(first.records("posts")) == 40
    posts_bookmark = read_bookmarks(first.final_state)[POSTS]
    assert posts_bookmark.tables == {"post_stats": None, "posts": posts_bookmark.run}

    demo.reset_log()
    second = sync_in_process(config, catalog=catalog, state=first.final_state)
    assert len(second.records("post_stats")) == 20
    assert not second.records("posts")
    assert not second.records("campaigns")
    assert len(demo.downloads()) == 1  # the posts export's archive only
    assert posts_bookmark.run is not None
    assert read_bookmarks(second.final_state)[POSTS].is_complete(posts_bookmark.run)

    demo.reset_log()
    third = sync_in_process(config, catalog=catalog, state=second.final_state)
    assert not demo.downloads()
    assert all(not third.records(stream) for stream in CSV_STREAMS)


def test_state_of_earlier_versions_still_resumes(demo: OktopostStandIn) -> None:
    legacy = {
        "bookmarks": {
            "active_export_metadata": {
                "partitions": [
                    {
                        "context": {"Id": POSTS},
                        "replication_key": "LastRunDate",
                        "replication_key_value": "2026-11-27T10:00:00+00:00",
                    }
                ]
            }
        }
    }
    run = sync_in_process(config_for(demo), state=legacy)

    assert run.returncode == 0
    assert not run.records("posts")
    assert len(run.records("campaigns")) == 10
    bookmarks = read_bookmarks(run.final_state)
    assert bookmarks[POSTS] == ExportBookmark(run="2026-11-27T10:00:00+00:00")
    assert bookmarks[CAMPAIGNS].is_complete("2026-11-23T10:00:00+00:00")


def test_an_account_without_active_exports_syncs_cleanly(
    stand_in: OktopostStandIn,
) -> None:
    run = sync_in_process(config_for(stand_in))

    assert run.returncode == 0, run.stderr
    assert not run.records("active_export_metadata")
    assert read_bookmarks(run.final_state) == {}


def test_a_damaged_file_fails_its_export_only(demo: OktopostStandIn) -> None:
    posts = demo_exports()[0]
    assert posts.archive is not None
    damaged = bytearray(posts.archive)
    damaged[len(damaged) // 3] ^= 0xFF
    config = config_for(demo)
    catalog = discover_in_process(config)
    demo.set_run(POSTS, bytes(damaged), "2026-11-28 10:00:00")
    run = sync_in_process(config, catalog=catalog)

    assert run.returncode == 1
    assert f"Export {POSTS} (Posts), file 2026-11-27-Posts.csv: " in run.stderr
    assert "Traceback" not in run.stderr
    assert len(run.records("campaigns")) == 10
    bookmarks = read_bookmarks(run.final_state)
    assert bookmarks[POSTS].run is None
    assert bookmarks[CAMPAIGNS].is_complete("2026-11-23T10:00:00+00:00")

    demo.set_run(POSTS, posts.archive, "2026-11-28 10:00:00")
    again = sync_in_process(config, catalog=catalog, state=run.final_state)
    assert again.returncode == 0
    assert len(again.records("posts")) == 40
    assert not again.records("campaigns")


def test_discovery_skips_a_damaged_archive_and_finds_the_others(
    demo: OktopostStandIn,
) -> None:
    posts = demo_exports()[0]
    assert posts.archive is not None
    damaged = bytearray(posts.archive)
    damaged[len(damaged) // 3] ^= 0xFF
    demo.set_run(POSTS, bytes(damaged), "2026-11-28 10:00:00")
    catalog = discover_in_process(config_for(demo))

    streams = {entry["tap_stream_id"] for entry in catalog["streams"]}
    assert "campaigns" in streams
    assert "posts" not in streams


def clicks_export(values: list[str], run_date: str) -> Any:
    rows = [[str(number), value] for number, value in enumerate(values, start=1)]
    text = csv_text([["Id", "Clicks"], *rows])
    return export_with("032000000000001", {"Stats.csv": text}, run_date=run_date)


def clicks_type(run: TapRun) -> list[str]:
    types = {tuple(s["properties"]["clicks"]["type"]) for s in run.schemas("stats")}
    assert len(types) == 1  # one type for the whole sync
    return list(types.pop())


def test_a_column_keeps_its_type_and_unfit_values_travel_as_text(
    stand_in: OktopostStandIn,
) -> None:
    config = config_for(stand_in)
    stand_in.add_export(clicks_export(["1", "2"], "2026-11-27"))
    first = sync_in_process(config)
    assert clicks_type(first) == ["integer", "null"]

    late = ["3"] * 2500 + ["5.5", "n/a", "4"]
    stand_in.set_run("032000000000001", clicks_export(late, "").archive, "2026-11-28")
    second = sync_in_process(config, state=first.final_state)

    assert clicks_type(second) == ["integer", "null"]
    records = second.records("stats")
    assert [(r["clicks"], r["_sdc_unfit_values"]) for r in records[-3:]] == [
        (None, {"clicks": "5.5"}),
        (None, {"clicks": "n/a"}),
        (4, None),
    ]
    assert "Stream stats, file Stats.csv, row 2501: column clicks" in second.stderr
    assert '{"stats": {"clicks": "string"}}' in second.stderr


def test_the_widen_setting_widens_between_syncs(stand_in: OktopostStandIn) -> None:
    config = config_for(stand_in, column_typing="widen")
    stand_in.add_export(clicks_export(["1", "2"], "2026-11-27"))
    first = sync_in_process(config)
    stand_in.set_run(
        "032000000000001", clicks_export(["3", "5.5"], "").archive, "2026-11-28"
    )
    second = sync_in_process(config, state=first.final_state)

    assert clicks_type(first) == ["integer", "null"]
    assert clicks_type(second) == ["number", "null"]
    assert [r["clicks"] for r in second.records("stats")] == [3, 5.5]
    assert all(r["_sdc_unfit_values"] is None for r in second.records("stats"))


def test_the_text_setting_loads_every_csv_column_as_text(
    stand_in: OktopostStandIn,
) -> None:
    stand_in.add_export(clicks_export(["1", "2"], "2026-11-27"))
    run = sync_in_process(config_for(stand_in, column_typing="text"))

    schema = run.schemas("stats")[0]["properties"]
    assert schema["clicks"]["type"] == schema["id"]["type"] == ["string", "null"]
    assert [r["clicks"] for r in run.records("stats")] == ["1", "2"]


def test_a_pinned_column_keeps_its_pin_and_the_warning_says_so(
    stand_in: OktopostStandIn,
) -> None:
    stand_in.add_export(clicks_export(["1", "oops"], "2026-11-27"))
    config = config_for(stand_in, column_types={"stats": {"clicks": "integer"}})
    run = sync_in_process(config)

    assert clicks_type(run) == ["integer", "null"]
    assert [r["_sdc_unfit_values"] for r in run.records("stats")] == [
        None,
        {"clicks": "oops"},
    ]
    assert "as the column_types setting pins it" in run.stderr
    assert "set column_types" not in run.stderr


def test_a_new_column_is_announced_before_the_first_record_carrying_it(
    stand_in: OktopostStandIn,
) -> None:
    config = config_for(stand_in)
    stand_in.add_export(clicks_export(["1"], "2026-11-27"))
    catalog = discover_in_process(config)
    first = sync_in_process(config, catalog=catalog)
    wider = csv_text([["Id", "Clicks", "Region"], ["2", "7", "EU"]])
    stand_in.set_run(
        "032000000000001",
        export_with("032000000000001", {"Stats.csv": wider}).archive,
        "2026-11-28",
    )
    second = sync_in_process(config, catalog=catalog, state=first.final_state)

    stats = [m for m in second.messages if m.get("stream") == "stats"]
    first_record = next(i for i, m in enumerate(stats) if m["type"] == "RECORD")
    announced = [m for m in stats[:first_record] if m["type"] == "SCHEMA"]
    assert announced
    assert announced[-1]["schema"]["properties"]["region"]["type"] == [
        "string",
        "null",
    ]
    assert stats[first_record]["record"]["region"] == "EU"


@pytest.mark.parametrize(
    ("row", "what"),
    [
        (["1", ("x" * 99 + "\n") * 5], "a field"),  # 500 characters, short lines
        (["1", *["a"] * 300], "a line"),  # 600 characters of short fields
    ],
)
def test_a_field_or_line_past_the_setting_fails_its_export_only(
    demo: OktopostStandIn, row: list[str], what: str
) -> None:
    huge = csv_text([["Id", "Text"], ["0", "fine"], row])
    demo.add_export(export_with("032000000000009", {"Huge.csv": huge}))
    run = sync_in_process(config_for(demo, max_csv_field_characters=400))

    assert run.returncode == 1
    assert (
        f"Export 032000000000009, file Huge.csv, read for its types before any row "
        f"went out: {what} is longer than the max_csv_field_characters setting (400"
    ) in run.stderr
    assert not run.records("huge")
    assert len(run.records("campaigns")) == 10


def test_awkward_archives_load_once_then_send_and_download_nothing(
    stand_in: OktopostStandIn,
) -> None:
    inner = make_zip({"Inner.csv": "id\n1\n"})
    members: dict[str, str | bytes] = {
        "投稿.csv": "番号,本文\n1,こんにちは\n",
        "__MACOSX/._投稿.csv": b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X",
        ".hidden.csv": "id\n2\n",
        "Empty.csv": b"",
        "Header Only.csv": "Id,Name\n",
        "nested/outer.zip": inner,
        "notes.txt": "not data",
    }
    stand_in.add_export(export_with("032000000000001", members))
    config = config_for(stand_in)
    catalog = discover_in_process(config)
    first = sync_in_process(config, catalog=catalog)

    assert first.returncode == 0
    assert {entry["tap_stream_id"] for entry in catalog["streams"]} >= {
        "tougao",
        "header_only",
        "inner_table",  # `inner` is reserved in Snowflake and PostgreSQL
    }
    # A header in another script: its letters, then a hash of its text.
    assert [r["benwen_2617ab4a"] for r in first.records("tougao")] == ["こんにちは"]
    assert [r["id"] for r in first.records("inner_table")] == [1]
    assert not first.records("header_only")
    assert read_bookmarks(first.final_state)["032000000000001"].is_complete(
        "2026-11-27T10:00:00+00:00"
    )

    stand_in.reset_log()
    second = sync_in_process(config, catalog=catalog, state=first.final_state)
    assert not stand_in.downloads()
    assert set(second.record_counts()) == {"export_list_metadata"}


def test_an_export_id_that_is_not_text_is_skipped_without_forging_a_log_line(
    demo: OktopostStandIn,
) -> None:
    demo.add_export(export_with("032\nERROR forged line", {"X.csv": "id\n1\n"}))
    run = sync_in_process(config_for(demo))

    assert run.returncode == 0
    assert "Skipping an export whose Id 032\\nERROR forged line is not text" in (
        run.stderr
    )
    assert "\nERROR forged line" not in run.stderr
    assert len(run.records("campaigns")) == 10

"""Whole syncs through the command line against the stand-in: what a user checks."""

from __future__ import annotations

import base64
import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    TapRun,
    config_for,
    csv_text,
    deselect,
    export_with,
    run_tap,
)
from tests.stand_ins.oktopost_stand_in import (
    OktopostStandIn,
    StandInExport,
    make_zip,
)

POSTS_HEADER = ["Post ID", "Network", "Message", "Clicks", "Rate", "Boosted", "At"]
TRICKY_MESSAGE = 'He said "hi", then left\r\nNew line, with comma'


def posts_rows(count: int, start: int = 1) -> list[list[str]]:
    return [
        [
            f"{number:07d}",
            "LinkedIn" if number % 2 else "Twitter",
            TRICKY_MESSAGE if number == 2 else f"Post {number}",
            str(number * 3),
            f"0.{number:02d}",
            "true" if number % 3 else "false",
            f"2026-11-{1 + number % 27:02d} 08:30:00",
        ]
        for number in range(start, start + count)
    ]


def posts_export(export_id: str, rows: list[list[str]], run_date: object) -> Any:
    return export_with(
        export_id,
        {"2026-11-27-Posts.csv": "\ufeff" + csv_text([POSTS_HEADER, *rows])},
        run_date=run_date,
    )


def secrets_of(stand_in: OktopostStandIn) -> list[str]:
    basic = base64.b64encode(f"{stand_in.account_id}:{stand_in.api_key}".encode())
    return [stand_in.api_key, basic.decode(), "X-Amz-Signature", "sftp-Pa55word!"]


def assert_no_secret(stand_in: OktopostStandIn, *runs: TapRun) -> None:
    for run in runs:
        for secret in secrets_of(stand_in):
            assert secret not in run.stdout
            assert secret not in run.stderr


def test_full_sync_of_the_demo_exports(demo: OktopostStandIn, tmp_path: Path) -> None:
    run = run_tap(config_for(demo), tmp_path)

    assert run.record_counts() == {
        "export_list_metadata": 4,
        "active_export_metadata": 3,
        "posts": 40,
        "post_stats": 20,
        "campaigns": 10,
    }
    assert "INACTIVE-EXPORT-DATA-MUST-NOT-LOAD" not in run.stdout
    listed = {record["Id"]: record for record in run.records("export_list_metadata")}
    assert listed["032000000000103"]["Destination"] == {
        "Host": "sftp.acme.com",
        "Port": 22,
        "Path": "/exports",
        "Username": "acme-bi",
    }
    details = {r["Id"]: r for r in run.records("active_export_metadata")}
    assert details["032000000000101"]["LastRunDate"] == "2026-11-27T10:00:00+00:00"
    assert details["032000000000101"]["LastRunFile"] == "2026-11-27-Posts-Report.zip"
    assert details["032000000000102"]["LastRunDate"] == "2026-11-23T10:00:00+00:00"
    assert details["032000000000104"]["LastRunFile"] is None
    assert run.bookmark("032000000000101") == "2026-11-27T10:00:00+00:00"
    assert run.bookmark("032000000000104") is None
    stats = run.records("post_stats")
    assert {r["_sdc_source_file"] for r in stats} == {"reports/Post Stats.csv"}
    assert [r["_sdc_row_number"] for r in stats] == list(range(1, 21))
    downloads = demo.downloads()
    assert len(downloads) == 2
    assert all("Authorization" not in request.headers for request in downloads)
    assert_no_secret(demo, run)


def test_rows_are_typed_and_tricky_csv_survives(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    stand_in.add_export(posts_export("032000000000001", posts_rows(3), "2026-11-27"))
    run = run_tap(config_for(stand_in), tmp_path)

    schema = run.schemas("posts")[0]["properties"]
    assert schema["post_id"]["type"] == ["string", "null"]
    assert schema["post_id"]["description"] == "Post ID"
    assert schema["clicks"]["type"] == ["integer", "null"]
    assert schema["rate"]["type"] == ["number", "null"]
    assert schema["boosted"]["type"] == ["boolean", "null"]
    assert schema["at"] == {
        "type": ["string", "null"],
        "format": "date-time",
        "description": "At",
    }
    rows = run.records("posts")
    assert rows[0] | {"sync_timestamp": None} == {
        "post_id": "0000001",
        "network": "LinkedIn",
        "message": "Post 1",
        "clicks": 3,
        "rate": 0.01,
        "boosted": True,
        "at": "2026-11-02T08:30:00+00:00",
        "export_id": "032000000000001",
        "sync_timestamp": None,
        "_sdc_source_file": "2026-11-27-Posts.csv",
        "_sdc_row_number": 1,
        "_sdc_export_run_at": "2026-11-27T00:00:00+00:00",
        "_sdc_extra": None,
        "_sdc_unfit_values": None,
    }
    assert rows[1]["message"] == TRICKY_MESSAGE
    assert rows[2]["boosted"] is False
    assert [row["_sdc_row_number"] for row in rows] == [1, 2, 3]


def test_ragged_rows_keep_every_value(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    text = "Id,Name,Score\n1,a,10\n2,b\n3,c,30,surplus,more\n\n4,,\n"
    stand_in.add_export(export_with("032000000000001", {"Scores.csv": text}))
    rows = run_tap(config_for(stand_in), tmp_path).records("scores")

    assert [(r["id"], r["name"], r["score"], r["_sdc_extra"]) for r in rows] == [
        (1, "a", 10, None),
        (2, "b", None, None),
        (3, "c", 30, ["surplus", "more"]),
        (4, None, None, None),
    ]


def test_a_late_value_types_its_column_from_the_first_schema(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    rows = [[str(n), f"{n}"] for n in range(1, 5001)]
    rows[4500][1] = "n/a"
    text = csv_text([["Id", "Clicks"], *rows])
    stand_in.add_export(export_with("032000000000001", {"Stats.csv": text}))
    run = run_tap(config_for(stand_in), tmp_path)

    schemas = run.schemas("stats")
    assert {json.dumps(schema, sort_keys=True) for schema in schemas} == {
        json.dumps(schemas[0], sort_keys=True)
    }
    assert schemas[0]["properties"]["clicks"]["type"] == ["string", "null"]
    assert schemas[0]["properties"]["id"]["type"] == ["integer", "null"]
    records = run.records("stats")
    assert len(records) == 5000
    assert records[4499]["clicks"] == "4500"
    assert records[4500]["clicks"] == "n/a"
    assert all(record["_sdc_unfit_values"] is None for record in records)


def test_same_file_name_in_two_exports_is_one_table(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    stand_in.add_export(posts_export("032000000000001", posts_rows(2), "2026-11-27"))
    stand_in.add_export(
        export_with(
            "032000000000002",
            {
                "Posts.csv": csv_text(
                    [["Post ID", "Clicks", "Region"], ["0099", "1.5", "EU"]]
                )
            },
            run_date="2026-11-26",
        )
    )
    run = run_tap(config_for(stand_in), tmp_path, discover=True)
    (posts,) = [s for s in run.messages[0]["streams"] if s["tap_stream_id"] == "posts"]
    properties = posts["schema"]["properties"]
    assert properties["clicks"]["type"] == ["number", "null"]
    assert "region" in properties
    assert "network" in properties

    rows = run_tap(config_for(stand_in), tmp_path).records("posts")
    assert sorted((r["export_id"], r["clicks"]) for r in rows) == [
        ("032000000000001", 3),
        ("032000000000001", 6),
        ("032000000000002", 1.5),
    ]


def test_discovery_catalog(demo: OktopostStandIn, tmp_path: Path) -> None:
    run = run_tap(config_for(demo), tmp_path, discover=True)
    streams = {s["tap_stream_id"]: s for s in run.messages[0]["streams"]}

    assert set(streams) == {
        "export_list_metadata",
        "active_export_metadata",
        "posts",
        "post_stats",
        "campaigns",
    }
    assert streams["posts"]["key_properties"] == [
        "export_id",
        "_sdc_export_run_at",
        "_sdc_source_file",
        "_sdc_row_number",
    ]
    # Bookmarks are the tap's own (per export and table), not a replication key.
    assert streams["active_export_metadata"].get("replication_key") is None
    campaign_columns = streams["campaigns"]["schema"]["properties"]
    assert campaign_columns["start_date"]["format"] == "date"
    assert campaign_columns["campaign_id"]["type"] == ["string", "null"]
    assert_no_secret(demo, run)


def test_second_sync_with_final_state_loads_nothing_new(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    first = run_tap(config_for(demo), tmp_path)
    demo.reset_log()
    second = run_tap(config_for(demo), tmp_path, state=first.final_state)

    counts = second.record_counts()
    assert counts["posts"] == counts["post_stats"] == counts["campaigns"] == 0
    assert demo.downloads() == []
    assert (
        second.final_state["bookmarks"]["active_export_metadata"]
        == (first.final_state["bookmarks"]["active_export_metadata"])
    )


def test_only_the_new_run_is_loaded(demo: OktopostStandIn, tmp_path: Path) -> None:
    first = run_tap(config_for(demo), tmp_path)
    demo.set_run(
        "032000000000102",
        posts_export("x", posts_rows(5), None).archive,
        "2026-11-30 10:00:00",
    )
    demo.reset_log()
    second = run_tap(config_for(demo), tmp_path, state=first.final_state)

    assert {k: v for k, v in second.record_counts().items() if "metadata" not in k} == {
        "posts": 5
    }
    assert {r["export_id"] for r in second.records("posts")} == {"032000000000102"}
    assert second.bookmark("032000000000102") == "2026-11-30T10:00:00+00:00"
    assert second.bookmark("032000000000101") == "2026-11-27T10:00:00+00:00"
    assert len(demo.downloads()) == 1


def test_catalog_sync_downloads_once_and_skips_deselected(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    catalog = run_tap(config_for(demo), tmp_path, discover=True).messages[0]
    deselect(catalog, "post_stats")
    demo.reset_log()
    run = run_tap(config_for(demo), tmp_path, catalog=copy.deepcopy(catalog))

    assert run.record_counts()["post_stats"] == 0
    assert run.record_counts()["posts"] == 40
    assert sorted(d.path.split("?")[0] for d in demo.downloads()) == [
        "/storage/032000000000101/2026-11-27-Posts-Report.zip",
        "/storage/032000000000102/2026-11-23-Campaigns-Report.zip",
    ]


def test_export_ids_and_test_export_id_choose_exports(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    config = config_for(
        demo, export_ids=["032000000000103"], test_export_id="032000000000102"
    )
    run = run_tap(config, tmp_path)
    counts = run.record_counts()
    assert counts["advocates"] == 5
    assert counts["campaigns"] == 10
    assert counts["posts"] == 0
    assert {r["Id"] for r in run.records("active_export_metadata")} == {
        "032000000000102",
        "032000000000103",
    }
    assert_no_secret(demo, run)


def test_primary_keys_setting(demo: OktopostStandIn, tmp_path: Path) -> None:
    config = config_for(demo, primary_keys={"campaigns": ["campaign_id"]})
    streams = run_tap(config, tmp_path, discover=True).messages[0]["streams"]
    keys = {s["tap_stream_id"]: s["key_properties"] for s in streams}
    assert keys["campaigns"] == ["campaign_id"]
    assert keys["posts"][0] == "export_id"

    bad = config_for(demo, primary_keys={"campaigns": ["nope"]})
    run = run_tap(bad, tmp_path, discover=True, check=False)
    assert run.returncode != 0
    assert "primary_keys" in run.stderr
    assert "nope" in run.stderr


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"api_key": None}, "api_key"),
        ({"account_id": None}, "account_id"),
        ({"base_url": "ftp://api.oktopost.com"}, "base_url"),
        ({"export_ids": "032000000000101"}, "export_ids"),
    ],
)
@pytest.mark.parametrize("discover", [True, False])
def test_bad_settings_fail_at_start_naming_the_setting(
    stand_in: OktopostStandIn,
    tmp_path: Path,
    settings: dict[str, Any],
    named: str,
    discover: bool,
) -> None:
    config = {
        k: v for k, v in {**config_for(stand_in), **settings}.items() if v is not None
    }
    run = run_tap(config, tmp_path, discover=discover, check=False)
    assert run.returncode != 0
    assert named in run.stderr
    assert stand_in.requests == []


def test_wrong_api_key_is_reported_without_leaking(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    run = run_tap(
        {**config_for(demo), "api_key": "wrong-key-123"}, tmp_path, check=False
    )
    assert run.returncode != 0
    assert "HTTP 401" in run.stderr
    assert "account_id and api_key" in run.stderr
    assert "wrong-key-123" not in run.stderr + run.stdout


def test_a_failed_export_keeps_its_bookmark_and_the_sync_fails(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    demo.fail_next("/storage/032000000000102", 404, times=10)
    run = run_tap(config_for(demo), tmp_path, check=False)

    assert run.returncode != 0
    assert "Export 032000000000102" in run.stderr
    assert "HTTP 404" in run.stderr
    assert run.bookmark("032000000000101") == "2026-11-27T10:00:00+00:00"
    assert run.bookmark("032000000000102") is None
    assert_no_secret(demo, run)


def test_a_never_run_export_is_a_record_not_an_error(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    for style in ("absent", "null", "empty"):
        stand_in.add_export(
            StandInExport(id=f"03200000000000{len(style)}", last_run_file_style=style)
        )
    run = run_tap(config_for(stand_in), tmp_path)
    details = run.records("active_export_metadata")
    assert len(details) == 3
    assert all(r["LastRunFile"] is None and r["LastRunDate"] is None for r in details)
    assert stand_in.downloads() == []


def test_rows_values_are_exact_decimals(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    """A decimal a float would round is text as written, or, pinned, a number to
    the last digit."""
    text = "Id,Amount\n1,12345678901234567.891\n2,0.1\n"
    stand_in.add_export(export_with("032000000000001", {"Money.csv": text}))
    run = run_tap(config_for(stand_in), tmp_path)
    assert '"amount":"12345678901234567.891"' in run.stdout
    pinned = {"money": {"amount": "number"}}
    run = run_tap(config_for(stand_in, column_types=pinned), tmp_path)
    assert '"amount":12345678901234567.891' in run.stdout
    assert [Decimal(str(r["amount"])) for r in run.records("money")][1] == Decimal(
        "0.1"
    )


def test_test_option_checks_credentials_with_one_call(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    ok = run_tap(config_for(demo), tmp_path, extra_args=["--test"])
    assert "Oktopost accepted the credentials of account acme-account" in ok.stderr
    assert [request.path for request in demo.requests] == ["/v2/me"]

    demo.reset_log()
    bad = {**config_for(demo), "api_key": "wrong"}
    refused = run_tap(bad, tmp_path, extra_args=["--test"], check=False)
    assert refused.returncode != 0
    assert "HTTP 401, check the account_id and api_key settings" in refused.stderr
    assert [request.path for request in demo.requests] == ["/v2/me"]

    missing = {k: v for k, v in config_for(demo).items() if k != "api_key"}
    invalid = run_tap(missing, tmp_path, extra_args=["--test"], check=False)
    assert invalid.returncode != 0
    assert "Config validation error: 'api_key' is a required property" in (
        invalid.stderr
    )


def test_the_export_list_is_synced_first(demo: OktopostStandIn, tmp_path: Path) -> None:
    run = run_tap(config_for(demo), tmp_path)
    first_record = next(m for m in run.messages if m["type"] == "RECORD")
    assert first_record["stream"] == "export_list_metadata"


def test_column_types_setting_pins_a_column(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    text = csv_text([["Id", "Clicks"], ["1", "5"], ["2", "n/a"]])
    stand_in.add_export(export_with("032000000000001", {"Stats.csv": text}))
    config = config_for(stand_in, column_types={"stats": {"clicks": "string"}})
    catalog = run_tap(config, tmp_path, discover=True).messages[0]
    (stats,) = [s for s in catalog["streams"] if s["tap_stream_id"] == "stats"]
    assert stats["schema"]["properties"]["clicks"]["type"] == ["string", "null"]

    run = run_tap(config, tmp_path, catalog=catalog)
    assert [r["clicks"] for r in run.records("stats")] == ["5", "n/a"]
    assert [r["id"] for r in run.records("stats")] == [1, 2]
    assert len(run.schemas("stats")) == 1
    assert "widens" not in run.stderr

    bad = config_for(stand_in, column_types={"stats": {"clicks": "text"}})
    refused = run_tap(bad, tmp_path, check=False)
    assert refused.returncode != 0
    assert "column_types" in refused.stderr


def test_a_column_keeps_its_type_from_earlier_syncs(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    def run_with(rows: list[list[str]], run_date: str, state: Any) -> Any:
        text = csv_text([["Id", "Clicks"], *rows])
        stand_in.set_run("032000000000001", make_zip({"Stats.csv": text}), run_date)
        catalog = run_tap(config_for(stand_in), tmp_path, discover=True).messages[0]
        return catalog, run_tap(
            config_for(stand_in), tmp_path, catalog=catalog, state=state
        )

    stand_in.add_export(StandInExport(id="032000000000001"))
    _, first = run_with([["1", "5"]], "2026-11-27", None)
    assert first.schemas("stats")[0]["properties"]["clicks"]["type"][0] == "integer"

    catalog, second = run_with([["2", ""]], "2026-11-28", first.final_state)
    (stats,) = [s for s in catalog["streams"] if s["tap_stream_id"] == "stats"]
    assert stats["schema"]["properties"]["clicks"]["type"][0] == "string"
    assert second.schemas("stats")[0]["properties"]["clicks"]["type"][0] == "integer"
    assert second.records("stats")[0]["clicks"] is None

    _, third = run_with([["3", "7"]], "2026-11-29", second.final_state)
    assert third.schemas("stats")[0]["properties"]["clicks"]["type"][0] == "integer"
    assert third.records("stats")[0]["clicks"] == 7


def test_csv_streams_load_and_bookmark_with_the_detail_stream_deselected(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    catalog = run_tap(config_for(demo), tmp_path, discover=True).messages[0]
    deselect(catalog, "active_export_metadata")
    run = run_tap(config_for(demo), tmp_path, catalog=catalog)

    counts = run.record_counts()
    assert counts["active_export_metadata"] == 0
    assert (counts["posts"], counts["post_stats"], counts["campaigns"]) == (40, 20, 10)
    assert run.bookmark("032000000000101") == "2026-11-27T10:00:00+00:00"
    again = run_tap(config_for(demo), tmp_path, catalog=catalog, state=run.final_state)
    assert again.record_counts()["posts"] == 0

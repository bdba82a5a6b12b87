"""Export details: run dates in every format, and credentials kept out of records."""

from __future__ import annotations

import pytest

from tap_oktopost.exports import (
    ExportRun,
    RunDateError,
    link_file_name,
    parse_run_date,
    without_secrets,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1795773600, "2026-11-27T10:00:00+00:00"),
        ("1795773600", "2026-11-27T10:00:00+00:00"),
        ("2026-11-27 10:00:00", "2026-11-27T10:00:00+00:00"),
        ("2026-11-27T10:00:00", "2026-11-27T10:00:00+00:00"),
        ("2026-11-27T10:00:00Z", "2026-11-27T10:00:00+00:00"),
        ("2026-11-27T12:00:00+02:00", "2026-11-27T10:00:00+00:00"),
        ("2026-11-27", "2026-11-27T00:00:00+00:00"),
        (None, None),
        ("", None),
    ],
)
def test_run_dates(value: object, expected: str | None) -> None:
    assert parse_run_date(value, "032000000000001") == expected


@pytest.mark.parametrize("value", ["last tuesday", "27/11/2026", True, [2026]])
def test_unparsable_run_date_names_the_export(value: object) -> None:
    with pytest.raises(RunDateError, match=r"Export 032000000000001: LastRunDate"):
        parse_run_date(value, "032000000000001")


def test_secrets_are_removed_at_any_depth() -> None:
    export = {
        "Id": "032000000000001",
        "Destination": {
            "Username": "bi",
            "Password": "pw",
            "AccountKey": "k",
            "Nested": [{"api_token": "t", "ClientSecret": "s", "Host": "h"}],
        },
    }
    assert without_secrets(export) == {
        "Id": "032000000000001",
        "Destination": {"Username": "bi"},
    }


def test_link_keeps_only_the_file_name() -> None:
    link = (
        "https://bucket.s3.amazonaws.com/a/2026-11-27%20Posts.zip?X-Amz-Signature=abc"
    )
    assert link_file_name(link) == "2026-11-27 Posts.zip"


@pytest.mark.parametrize("link", [None, "", "absent"])
def test_an_export_that_never_ran_has_no_run(link: str | None) -> None:
    detail = {"Id": "032000000000001", "Type": "Posts", "LastRunDate": None}
    if link != "absent":
        detail["LastRunFile"] = link
    run = ExportRun.from_detail("032000000000001", detail)
    assert run.run_at is None
    assert run.record["LastRunFile"] is None


def test_run_record_has_file_name_and_no_link() -> None:
    link = "https://storage.example/x/2026-11-27-Posts-Report.zip?X-Amz-Signature=abc"
    detail = {"Id": "032000000000001", "LastRunDate": "2026-11-27", "LastRunFile": link}
    run = ExportRun.from_detail("032000000000001", detail)
    assert run.run_at == "2026-11-27T00:00:00+00:00"
    assert run.record["LastRunFile"] == "2026-11-27-Posts-Report.zip"
    assert "X-Amz" not in repr(run)

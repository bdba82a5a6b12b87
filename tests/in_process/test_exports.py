"""Export details: run dates in every format, and credentials kept out of records."""

from __future__ import annotations

import datetime
import json
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.plugin_base import JSONSchemaValidator

from tap_oktopost.api.errors import OktopostError, printable
from tap_oktopost.api.exports import (
    SAFE_DESTINATION_FIELDS,
    TEXT_FIELDS,
    ExportDetailError,
    ExportRun,
    RunDateError,
    link_file_name,
    parse_run_date,
    without_secrets,
)
from tap_oktopost.streams import ActiveExportStream, ExportListStream
from tests.conftest import (
    config_for,
    csv_text,
    discover_in_process,
    export_with,
    run_tap,
    sync_in_process,
)
from tests.stand_ins.oktopost_stand_in import MISSING, OktopostStandIn


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


# -- One export's bad detail is that export's error ------------------------------
#
# Each class of bad or odd detail value is generated, many instances a class from a
# fixed seed, and read by `ExportRun.from_detail`; the in-process syncs and
# discoveries below put one such export among healthy ones.

EXPORT = "032000000000001"
SIGNATURE = "X-Amz-Signature=5ecret5ecret5ecret"
SEEDS = range(12)
UTC = datetime.timezone.utc


def seeded(seed: object) -> random.Random:
    """A generator of test data, the same for a seed in every run."""
    return random.Random(str(seed))  # noqa: S311 - reproducible data, not secrets


def words(rng: random.Random, count: int = 1) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ".".join(
        "".join(rng.choices(letters, k=rng.randint(1, 10))) for _ in range(count)
    )


def signed_path(rng: random.Random) -> str:
    return f"/{words(rng)}/2026-11-{rng.randint(10, 28)}-Posts.zip?{SIGNATURE}"


def good_link(rng: random.Random) -> str:
    host = rng.choice(
        [
            f"{words(rng, rng.randint(2, 4))}.com",
            f"127.0.0.{rng.randint(1, 254)}",
            "[::1]",
            f"{words(rng)}-{words(rng)}.s3.amazonaws.com",
        ]
    )
    port = rng.choice(["", f":{rng.randint(1, 65535)}"])
    scheme = rng.choice(["https", "http", "HTTPS"])
    return f"{scheme}://{host}{port}{signed_path(rng)}"


BAD_LINKS: dict[str, Callable[[random.Random], object]] = {
    "unbalanced bracket": lambda rng: rng.choice(
        [
            f"https://[{words(rng)}{signed_path(rng)}",
            f"https://{words(rng)}]{signed_path(rng)}",
            f"http://[::{rng.randint(1, 9)}{signed_path(rng)}",
            f"https://{words(rng)}[.com{signed_path(rng)}",
        ]
    ),
    "non-http scheme": lambda rng: rng.choice(
        [
            f"{rng.choice(['ftp', 'sftp', 'file', 's3', 'gs', 'ws'])}://"
            f"{words(rng, 2)}{signed_path(rng)}",
            f"javascript:{words(rng)}({rng.randint(0, 9)})",
            f"data:text/html,{words(rng)}",
            f"mailto:{words(rng)}@{words(rng, 2)}",
            f"{words(rng)}:{signed_path(rng)}",
        ]
    ),
    "no host": lambda rng: rng.choice(
        [
            f"https://{signed_path(rng)}",
            f"http://?{SIGNATURE}",
            f"https://:{rng.randint(1, 9999)}{signed_path(rng)}",
            f"https://{words(rng)}@{signed_path(rng)}",
            "https://",
        ]
    ),
    "relative path": lambda rng: rng.choice(
        [
            signed_path(rng),
            signed_path(rng).lstrip("/"),
            f"./{signed_path(rng).lstrip('/')}",
            f"//{words(rng, 2)}{signed_path(rng)}",
        ]
    ),
    "bad port or labels": lambda rng: rng.choice(
        [
            f"https://{words(rng, 2)}:{rng.randint(65536, 10**6)}{signed_path(rng)}",
            f"https://{words(rng, 2)}:{words(rng)}{signed_path(rng)}",
            f"https://{words(rng)}..com{signed_path(rng)}",
            f"https://.{words(rng, 2)}{signed_path(rng)}",
            f"https://{'a' * rng.randint(64, 90)}.com{signed_path(rng)}",
        ]
    ),
    "number": lambda rng: rng.choice(
        [rng.randint(-(10**12), 10**12), rng.uniform(-1e6, 1e6), 1]
    ),
    "object": lambda rng: {words(rng): rng.choice([words(rng), rng.randint(0, 9)])},
    "list": lambda rng: [good_link(rng)] * rng.randint(0, 2),
    "boolean": lambda rng: rng.choice([True, False]),
    "whitespace": lambda rng: rng.choice(
        [
            "".join(rng.choices(" \t\n\r\u00a0", k=rng.randint(1, 5))),
            good_link(rng) + rng.choice([" ", "\n", "\t"]),
            rng.choice([" ", "\r\n"]) + good_link(rng),
            good_link(rng).replace("/", "/ ", 1).replace("://", "://x"),
            good_link(rng).replace("Posts", "Po\x00sts"),
        ]
    ),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", BAD_LINKS)
def test_a_link_that_cannot_be_fetched_fails_its_export_naming_the_field(
    kind: str, seed: int
) -> None:
    rng = seeded(f"{kind}-{seed}")
    link = BAD_LINKS[kind](rng)
    detail = {"Id": EXPORT, "LastRunDate": "2026-11-27", "LastRunFile": link}

    with pytest.raises(ExportDetailError) as raised:
        ExportRun.from_detail(EXPORT, detail)

    message = str(raised.value)
    assert isinstance(raised.value, OktopostError)
    assert message.startswith(f"Export {EXPORT}: LastRunFile ")
    assert "5ecret" not in message
    assert "\n" not in message
    assert len(message) < 200


@pytest.mark.parametrize("seed", range(40))
def test_links_that_can_be_fetched_are_kept_and_only_their_file_name_shown(
    seed: int,
) -> None:
    link = good_link(seeded(seed))
    detail = {"Id": EXPORT, "LastRunDate": "2026-11-27", "LastRunFile": link}
    run = ExportRun.from_detail(EXPORT, detail)
    assert run.link == link
    assert run.run_at == "2026-11-27T00:00:00+00:00"
    assert run.record["LastRunFile"].endswith("-Posts.zip")
    assert "5ecret" not in repr(run) + json.dumps(run.record)


def random_moment(rng: random.Random) -> datetime.datetime:
    """A time between 2001 and 2099, UTC, to the microsecond."""
    seconds = rng.randint(10**9, 4 * 10**9)
    return datetime.datetime.fromtimestamp(seconds, tz=UTC).replace(
        microsecond=rng.randint(0, 999_999)
    )


def epoch_forms(rng: random.Random) -> tuple[object, datetime.datetime]:
    moment = random_moment(rng)
    whole = moment.replace(microsecond=0)
    seconds = int(whole.timestamp())
    millis = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return rng.choice(
        [
            (seconds, whole),
            (str(seconds), whole),
            (f" {seconds} ", whole),
            (seconds + 0.5, whole.replace(microsecond=500_000)),
            (f"{seconds}.25", whole.replace(microsecond=250_000)),
            (seconds * 1000 + millis.microsecond // 1000, millis),
            (str(seconds * 1000 + millis.microsecond // 1000), millis),
            (seconds * 10**6 + moment.microsecond, moment),
            (str(seconds * 10**6 + moment.microsecond), moment),
        ]
    )


def iso_forms(rng: random.Random) -> tuple[object, datetime.datetime]:
    moment = random_moment(rng).replace(microsecond=0)
    offset = datetime.timedelta(minutes=rng.choice([-600, -330, 0, 60, 120, 345, 840]))
    local = moment.astimezone(datetime.timezone(offset))
    sign = "-" if offset < datetime.timedelta(0) else "+"
    hours, minutes = divmod(abs(int(offset.total_seconds())) // 60, 60)
    day = moment.date()
    return rng.choice(
        [
            (moment.strftime("%Y-%m-%d %H:%M:%S"), moment),
            (moment.strftime("%Y-%m-%dT%H:%M:%S"), moment),
            (moment.strftime("%Y-%m-%dT%H:%M:%SZ"), moment),
            (moment.strftime("%Y-%m-%d %H:%M:%S UTC"), moment),
            (
                moment.strftime("%Y-%m-%dT%H:%M:%S.250z"),
                moment.replace(microsecond=250_000),
            ),
            (
                local.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{hours:02}:{minutes:02}",
                moment,
            ),
            (
                local.strftime("%Y-%m-%d %H:%M:%S") + f"{sign}{hours:02}{minutes:02}",
                moment,
            ),
            (moment.strftime("%Y-%m-%dT%H:%M"), moment.replace(second=0)),
            (
                day.isoformat(),
                datetime.datetime(day.year, day.month, day.day, tzinfo=UTC),
            ),
        ]
    )


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize("forms", [epoch_forms, iso_forms])
def test_run_dates_in_every_form_read_as_the_same_utc_time(
    forms: Callable[[random.Random], tuple[object, datetime.datetime]], seed: int
) -> None:
    value, moment = forms(seeded(seed))
    assert parse_run_date(value, EXPORT) == moment.isoformat()
    detail = {"LastRunDate": value, "LastRunFile": good_link(seeded(seed))}
    run = ExportRun.from_detail(EXPORT, detail)
    assert run.run_at == run.record["LastRunDate"] == moment.isoformat()


NEVER_RAN: list[object] = [
    None,
    "",
    " ",
    0,
    0.0,
    "0",
    " 0 ",
    "0.0",
    "0000-00-00",
    "0000-00-00 00:00:00",
    "1970-01-01",
    "1970-01-01T00:00:00Z",
    MISSING,
]


@pytest.mark.parametrize("date", NEVER_RAN, ids=repr)
@pytest.mark.parametrize("link", [None, "", MISSING], ids=repr)
def test_a_run_date_meaning_never_is_no_run_and_no_1970(
    date: object, link: object
) -> None:
    detail: dict[str, object] = {"Id": EXPORT, "Type": "Posts"}
    for name, value in (("LastRunDate", date), ("LastRunFile", link)):
        if value is not MISSING:
            detail[name] = value
    run = ExportRun.from_detail(EXPORT, detail)
    assert run.run_at is None
    assert run.record["LastRunDate"] is None
    assert run.record["LastRunFile"] is None


@pytest.mark.parametrize("date", NEVER_RAN, ids=repr)
def test_a_file_without_a_run_date_takes_its_date_from_its_name_or_fails(
    date: object,
) -> None:
    """A file is a run: its date comes from the file name, or the export fails (a
    run whose date is unknown cannot be bookmarked, and must not look unrun)."""
    detail: dict[str, object] = {
        "LastRunFile": f"https://h.com/a/2026-11-30-Posts.zip?{SIGNATURE}"
    }
    if date is not MISSING:
        detail["LastRunDate"] = date
    assert ExportRun.from_detail(EXPORT, detail).run_at == "2026-11-30T00:00:00+00:00"

    for name in ("Posts.zip", "2026-13-45-Posts.zip", "report-2026-11-30.zip"):
        detail["LastRunFile"] = f"https://h.com/a/{name}?{SIGNATURE}"
        with pytest.raises(
            ExportDetailError,
            match=f"Export {EXPORT}: LastRunFile is set but LastRunDate is empty",
        ):
            ExportRun.from_detail(EXPORT, detail)


UNREADABLE_DATES: dict[str, Callable[[random.Random], object]] = {
    "words": lambda rng: rng.choice(
        ["yesterday", "last tuesday", "27/11/2026", "now", words(rng, 2)]
    ),
    "boolean": lambda rng: rng.choice([True, False]),
    "object": lambda rng: {words(rng): random_moment(rng).isoformat()},
    "list": lambda rng: [random_moment(rng).isoformat()] * rng.randint(1, 2),
    "year out of range": lambda rng: rng.choice(
        [
            f"{rng.randint(10000, 99999)}-01-01",
            f"0000-{rng.randint(1, 12):02}-01",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            f"{rng.randint(1800, 1969)}-06-01",
            rng.randint(10**17, 10**30),
            str(rng.randint(10**17, 10**30)),
            -rng.randint(1, 10**12),
            f"-{rng.randint(1, 10**12)}",
        ]
    ),
    "not finite": lambda rng: rng.choice(
        [float("nan"), float("inf"), -float("inf"), "NaN", "inf", "Infinity"]
    ),
    "control characters": lambda rng: f"2026-11-27\n{words(rng)}\x1b[31m",
    "long text": lambda rng: words(rng) * 200,
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", UNREADABLE_DATES)
def test_an_unreadable_run_date_fails_its_export_naming_the_value_short(
    kind: str, seed: int
) -> None:
    value = UNREADABLE_DATES[kind](seeded(f"{kind}-{seed}"))
    for link in (None, good_link(seeded(seed))):
        with pytest.raises(RunDateError) as raised:
            ExportRun.from_detail(EXPORT, {"LastRunDate": value, "LastRunFile": link})
        message = str(raised.value)
        assert isinstance(raised.value, OktopostError)
        assert message.startswith(f"Export {EXPORT}: LastRunDate ")
        assert "\n" not in message
        assert "\x1b" not in message
        assert len(message) < 200
    assert printable(repr(value)[:10]) in message


ODD_VALUES: list[object] = [
    {"Name": "Posts"},
    ["Posts", "Reach"],
    True,
    None,
    12,
    1.5,
    {"Password": "pw-5ecret"},
    [],
]
ACTIVE_SCHEMA = ActiveExportStream.schema


@pytest.mark.parametrize("seed", range(30))
def test_detail_fields_of_another_json_type_never_raise_nor_leave_the_schema(
    seed: int,
) -> None:
    rng = seeded(seed)
    detail: dict[str, object] = {
        "Id": rng.choice([EXPORT, 5, None, {"x": 1}]),
        "LastRunDate": "2026-11-27 10:00:00",
        "LastRunFile": good_link(rng),
    }
    for name in rng.sample(list(TEXT_FIELDS), rng.randint(1, len(TEXT_FIELDS))):
        detail[name] = rng.choice(ODD_VALUES)
    detail["Destination"] = rng.choice(
        [
            words(rng),
            ["a", "b"],
            7,
            None,
            {"Email": "bi@acme.com", "Password": "pw-5ecret"},
        ]
    )

    run = ExportRun.from_detail(EXPORT, detail)

    record = run.record
    assert not list(JSONSchemaValidator(ACTIVE_SCHEMA).iter_errors(record))
    assert record["Id"] == EXPORT
    for name in TEXT_FIELDS:
        value = detail.get(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            assert record[name] == str(value)
        elif name in detail:
            assert record[name] is None
    assert "5ecret" not in json.dumps(record)
    assert isinstance(run.export_type, str)


HEALTHY = {"032000000000701": "Posts.csv", "032000000000702": "Campaigns.csv"}
BAD = "032000000000703"


def bad_link_detail(kind: str) -> Callable[[random.Random], dict[str, Any]]:
    return lambda rng: {"detail_fields": {"LastRunFile": BAD_LINKS[kind](rng)}}


def bad_date_detail(kind: str) -> Callable[[random.Random], dict[str, Any]]:
    return lambda rng: {"detail_fields": {"LastRunDate": UNREADABLE_DATES[kind](rng)}}


BAD_DETAILS: dict[str, Callable[[random.Random], dict[str, Any]]] = {
    **{f"LastRunFile {kind}": bad_link_detail(kind) for kind in BAD_LINKS},
    **{f"LastRunDate {kind}": bad_date_detail(kind) for kind in UNREADABLE_DATES},
    "no Export object": lambda rng: {
        "detail_answer": rng.choice(
            [
                {"Result": True},
                {"Result": True, "Export": None},
                {"Result": True, "Export": [BAD]},
                {"Result": True, "Export": words(rng)},
            ]
        )
    },
}
"""Answers of `GET /bi-export/{id}` the tap cannot load from, by class."""


def numbered_csv(rng: random.Random, prefix: str) -> tuple[str, set[str]]:
    ids = {f"{prefix}-{n}" for n in range(rng.randint(1, 30))}
    return csv_text([["Id", "Name"], *[[i, words(rng)] for i in sorted(ids)]]), ids


def serve_one_bad_among_healthy(
    stand_in: OktopostStandIn, kind: str, seed: int
) -> dict[str, set[str]]:
    """Two healthy exports and one with a bad detail; the healthy tables' Ids."""
    rng = seeded(f"{kind}-{seed}")
    expected = {}
    for export_id, member in HEALTHY.items():
        text, ids = numbered_csv(rng, export_id)
        stand_in.add_export(export_with(export_id, {member: text}))
        expected[member.removesuffix(".csv").lower()] = ids
    text, _ = numbered_csv(rng, BAD)
    bad = export_with(BAD, {"Reach.csv": text}, **BAD_DETAILS[kind](rng))
    # The bad export is listed between the healthy ones.
    stand_in.remove_export("032000000000702")
    stand_in.add_export(bad)
    stand_in.add_export(
        export_with(
            "032000000000702", {"Campaigns.csv": csv_from(expected["campaigns"])}
        )
    )
    return expected


def csv_from(ids: set[str]) -> str:
    return csv_text([["Id", "Name"], *[[i, "x"] for i in sorted(ids)]])


def named_at_warning_or_above(caplog: pytest.LogCaptureFixture, export_id: str) -> bool:
    return any(
        record.levelno >= logging.WARNING and export_id in record.getMessage()
        for record in caplog.records
    )


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kind", BAD_DETAILS)
def test_discovery_finds_the_healthy_exports_tables_and_names_the_bad_one(
    stand_in: OktopostStandIn,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    seed: int,
) -> None:
    serve_one_bad_among_healthy(stand_in, kind, seed)
    caplog.set_level(logging.INFO)

    catalog = discover_in_process(config_for(stand_in))

    streams = {entry["tap_stream_id"] for entry in catalog["streams"]}
    assert {"posts", "campaigns"} <= streams
    assert "reach" not in streams
    assert named_at_warning_or_above(caplog, BAD)
    assert "5ecret" not in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kind", BAD_DETAILS)
def test_a_sync_loads_every_healthy_export_and_fails_naming_the_bad_one(
    stand_in: OktopostStandIn, kind: str, seed: int
) -> None:
    expected = serve_one_bad_among_healthy(stand_in, kind, seed)

    run = sync_in_process(config_for(stand_in))

    assert run.returncode != 0
    for stream, ids in expected.items():
        assert {record["id"] for record in run.records(stream)} == ids
    assert not run.records("reach")
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR")]
    assert any(BAD in line for line in errors)
    assert "Traceback" not in run.stderr
    assert "5ecret" not in run.stdout + run.stderr
    # The healthy exports' runs are bookmarked; the bad one's is not.
    assert all(run.bookmark(export_id) for export_id in HEALTHY)
    assert run.bookmark(BAD) is None


@pytest.mark.parametrize("seed", range(6))
def test_metadata_fields_of_another_json_type_load_in_their_declared_shape(
    stand_in: OktopostStandIn, seed: int
) -> None:
    """Odd fields in the list and the detail: the export loads, and both metadata
    streams' records fit their schemas. (`Status` in the list says which exports
    are active: it is left out here.)"""
    rng = seeded(f"odd-metadata-{seed}")
    text, ids = numbered_csv(rng, EXPORT)
    odd_names = [name for name in TEXT_FIELDS if name != "Status"]
    listed = {name: rng.choice(ODD_VALUES) for name in rng.sample(odd_names, 2)}
    listed["Destination"] = rng.choice([words(rng), ["a"], 3, None])
    detail = {"Status": rng.choice(ODD_VALUES), "Frequency": rng.choice(ODD_VALUES)}
    stand_in.add_export(
        export_with(
            EXPORT, {"Posts.csv": text}, list_fields=listed, detail_fields=detail
        )
    )

    run = sync_in_process(config_for(stand_in))

    assert run.returncode == 0, run.stderr[-2000:]
    assert {record["id"] for record in run.records("posts")} == ids
    for stream in (ExportListStream, ActiveExportStream):
        (record,) = run.records(stream.name)
        assert not list(JSONSchemaValidator(stream.schema).iter_errors(record))
        assert record["Id"] == EXPORT
        assert record["Destination"] == {}
        assert "5ecret" not in json.dumps(record)
    assert run.bookmark(EXPORT) == "2026-11-27T10:00:00+00:00"


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind",
    ["LastRunFile unbalanced bracket", "LastRunFile object", "LastRunDate not finite"],
)
def test_the_command_line_discovers_and_syncs_the_healthy_exports_past_a_bad_one(
    stand_in: OktopostStandIn, tmp_path: Path, kind: str
) -> None:
    expected = serve_one_bad_among_healthy(stand_in, kind, 0)
    config = config_for(stand_in)

    discovered = run_tap(config, tmp_path, discover=True)
    streams = {entry["tap_stream_id"] for entry in discovered.messages[0]["streams"]}
    assert {"posts", "campaigns"} <= streams
    assert "reach" not in streams
    assert BAD in discovered.stderr

    synced = run_tap(config, tmp_path, catalog=discovered.messages[0], check=False)
    assert synced.returncode == 1
    for stream, ids in expected.items():
        assert {record["id"] for record in synced.records(stream)} == ids
    assert any("| ERROR" in line and BAD in line for line in synced.stderr.splitlines())
    for output in (discovered, synced):
        assert "Traceback" not in output.stderr
        assert "5ecret" not in output.stdout + output.stderr


DESTINATION_VALUES: list[object] = [
    "sftp.acme.com",
    "",
    22,
    "2222",
    " 21 ",
    3.5,
    True,
    None,
    ["bi@acme.com", "ops@acme.com"],
    ["bi@acme.com", 7, None],
    {"nested": "x"},
    [{"Password": "pw-5ecret"}],
]


@pytest.mark.parametrize("seed", range(40))
def test_every_destination_field_kept_is_declared_in_its_type(seed: int) -> None:
    """Targets that build columns from the declared properties (target-sqlite,
    target-parquet, singer-python's Transformer) keep every field that goes out."""
    rng = seeded(seed)
    kept = rng.sample(sorted(SAFE_DESTINATION_FIELDS), rng.randint(1, 8))
    destination = {name: rng.choice(DESTINATION_VALUES) for name in kept}
    destination["Password"] = "pw-5ecret"
    detail = {
        "Id": EXPORT,
        "Destination": destination,
        "LastRunDate": "2026-11-27 10:00:00",
        "LastRunFile": good_link(rng),
    }

    record = ExportRun.from_detail(EXPORT, detail).record

    declared = ACTIVE_SCHEMA["properties"]["Destination"]["properties"]
    assert set(record["Destination"]) == set(kept)
    assert set(record["Destination"]) <= set(declared)
    assert not list(JSONSchemaValidator(ACTIVE_SCHEMA).iter_errors(record))
    for name in kept:
        value, sent = destination[name], record["Destination"][name]
        if name == "Port":
            plain = str(value).strip() if isinstance(value, int | str) else ""
            digits = plain.isdigit() and not isinstance(value, bool)
            assert sent == (int(plain) if digits else None)
        elif isinstance(value, str) and name != "Emails":
            assert sent == value
    assert "5ecret" not in json.dumps(record)


def test_the_destination_schema_declares_every_field_the_allow_list_passes() -> None:
    declared = ACTIVE_SCHEMA["properties"]["Destination"]["properties"]
    assert set(declared) == set(SAFE_DESTINATION_FIELDS)
    assert declared["Port"]["type"] == ["integer", "null"]
    assert declared["Emails"]["items"]["type"] == ["string"]

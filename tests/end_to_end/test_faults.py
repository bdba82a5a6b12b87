"""Faults of the API and object storage, and odd input: survived or refused clearly.

Every run here is scanned for secrets at DEBUG log level, on success and on failure.
"""

from __future__ import annotations

import fcntl
import gzip
import io
import json
import os
import signal
import subprocess
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from tap_oktopost.sync.ledger import read_bookmarks
from tests.conftest import (
    TAP,
    TapRun,
    batch_file_lines,
    config_for,
    csv_text,
    export_with,
    run_tap,
)
from tests.end_to_end.test_sync import assert_no_secret
from tests.stand_ins.oktopost_stand_in import (
    OktopostStandIn,
    StandInExport,
    demo_exports,
)

POSTS = "032000000000101"
CAMPAIGNS = "032000000000102"
ALL_ROWS = {"posts": 40, "post_stats": 20, "campaigns": 10}


def debug_run(stand_in: OktopostStandIn, tmp_path: Path, **kwargs: Any) -> TapRun:
    """A sync at DEBUG log level, checked for secrets whatever its outcome."""
    settings = kwargs.pop("settings", {})
    run = run_tap(
        config_for(stand_in, **settings),
        tmp_path,
        check=False,
        env={"LOGLEVEL": "DEBUG"},
        **kwargs,
    )
    assert_no_secret(stand_in, run)
    return run


def csv_counts(run: TapRun) -> dict[str, int]:
    counts = run.record_counts()
    return {stream: counts[stream] for stream in ALL_ROWS}


def test_429_with_retry_after_is_waited_out(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    # Ignoring Retry-After would wait the 5 s lockout setting and log it: the
    # assertions on the logged waits fail, not a timeout.
    demo.fail_next("/v2/bi-export?", 429, times=2, headers={"Retry-After": "0"})
    run = debug_run(demo, tmp_path, settings={"rate_limit_wait_seconds": 5})

    assert run.returncode == 0, run.stderr[-2000:]
    assert csv_counts(run) == ALL_ROWS
    for retry in (1, 2):
        assert (
            "Listing exports (page 0): Oktopost's rate limit (HTTP 429): "
            f"retry {retry} of 2 in 0 s as its Retry-After header asks"
        ) in run.stderr
    assert "in 5 s" not in run.stderr


def test_429_without_retry_after_waits_the_lockout_setting(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    demo.fail_next(f"/v2/bi-export/{CAMPAIGNS}", 429)
    run = debug_run(demo, tmp_path, settings={"rate_limit_wait_seconds": 0.1})

    assert run.returncode == 0, run.stderr[-2000:]
    assert csv_counts(run) == ALL_ROWS
    assert (
        f"Export {CAMPAIGNS}: Oktopost's rate limit (HTTP 429): retry 1 of 2 in 0.1 s "
        "(rate_limit_wait_seconds)"
    ) in run.stderr


def test_a_burst_of_502_is_retried(demo: OktopostStandIn, tmp_path: Path) -> None:
    demo.fail_next(f"/v2/bi-export/{POSTS}", 502, times=2)
    demo.fail_next("/storage/", 503, times=1)
    run = debug_run(demo, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert csv_counts(run) == ALL_ROWS
    assert "HTTP 502 from Oktopost: retry 1 of 2" in run.stderr


def test_errors_past_the_retries_fail_one_export_and_the_others_load(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    demo.fail_next(f"/v2/bi-export/{POSTS}", 500, times=100)
    run = debug_run(demo, tmp_path, settings={"max_retries": 1})

    assert run.returncode != 0
    assert f"Export {POSTS}: HTTP 500 from Oktopost" in run.stderr
    assert csv_counts(run) == {"posts": 0, "post_stats": 0, "campaigns": 10}
    assert run.bookmark(POSTS) is None
    assert run.bookmark(CAMPAIGNS) == "2026-11-23T10:00:00+00:00"


@pytest.mark.parametrize("fault", ["truncated", "expired", "corrupt"])
def test_a_bad_download_is_fetched_again_with_a_fresh_link(
    demo: OktopostStandIn, tmp_path: Path, fault: str
) -> None:
    if fault == "truncated":
        demo.truncate_next_download()
    elif fault == "expired":
        demo.fail_next(f"/storage/{POSTS}", 403)
    else:
        demo.fail_next(f"/storage/{POSTS}", 200, body=b"PK\x03\x04 damaged")
    run = debug_run(demo, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert csv_counts(run) == ALL_ROWS
    links = [r.path for r in demo.downloads() if r.path.startswith(f"/storage/{POSTS}")]
    assert len(links) == 2
    assert links[0] != links[1]
    assert "(retried with a fresh link): retry 1 of 2" in run.stderr


@pytest.mark.parametrize(
    ("body", "quoted"),
    [
        (
            b'{"Result": false, "Errors": {"API": {"Error": "Campaign not found"}}}',
            "API.Error: Campaign not found",
        ),
        (b'{"Result": false, "Errors": []}', "no error message"),
        (b"<html>Bad gateway</html>", "<html>Bad gateway</html>"),
    ],
)
def test_an_error_envelope_with_http_200_quotes_oktopost(
    demo: OktopostStandIn, tmp_path: Path, body: bytes, quoted: str
) -> None:
    demo.fail_next(f"/v2/bi-export/{POSTS}", 200, body=body, times=2)
    run = debug_run(demo, tmp_path)

    assert run.returncode != 0
    assert f"Export {POSTS}:" in run.stderr
    assert quoted in run.stderr
    assert csv_counts(run)["campaigns"] == 10


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (401, "check the account_id and api_key settings"),
        (403, "the API key's user lacks permission"),
        (400, "Oktopost rejected the request"),
    ],
)
def test_client_errors_are_not_retried_and_say_what_to_check(
    demo: OktopostStandIn, tmp_path: Path, status: int, advice: str
) -> None:
    demo.fail_next("/v2/bi-export?", status, times=10)
    run = debug_run(demo, tmp_path)

    assert run.returncode != 0
    assert f"HTTP {status}, {advice}" in run.stderr
    listing = [r for r in demo.requests if r.path.startswith("/v2/bi-export?")]
    assert len(listing) == 1


def test_an_unknown_export_id_names_the_setting(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    run = debug_run(demo, tmp_path, settings={"export_ids": ["032000000000999", POSTS]})

    assert run.returncode != 0
    assert "Export 032000000000999: HTTP 404, check the export id" in run.stderr
    assert "export_ids" in run.stderr
    assert run.record_counts()["posts"] == 40


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"%PDF-1.7 a report", "a PDF report"),
        (b"\xd0\xcf\x11\xe0 an old Excel file", "an Office report"),
    ],
)
def test_a_report_instead_of_csv_is_a_warning_and_the_others_load(
    demo: OktopostStandIn, tmp_path: Path, content: bytes, kind: str
) -> None:
    demo.set_run(POSTS, content, "2026-11-28 10:00:00", archive_name="Report.pdf")
    run = debug_run(demo, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert f"Export {POSTS} (Posts): its last run's file is {kind}" in run.stderr
    assert csv_counts(run) == {"posts": 0, "post_stats": 0, "campaigns": 10}
    demo.reset_log()
    again = debug_run(demo, tmp_path, state=run.final_state)
    assert [r.path for r in demo.downloads()] == []
    assert again.returncode == 0


def test_an_archive_without_csv_is_a_warning(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    stand_in.add_export(
        export_with(POSTS, {"[Content_Types].xml": "<xml/>", "xl/sheet1.xml": "<x/>"})
    )
    stand_in.add_export(export_with(CAMPAIGNS, {}))
    run = debug_run(stand_in, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert f"Export {POSTS} (Posts): its last run's archive holds no CSV" in run.stderr
    assert f"Export {CAMPAIGNS} (Posts): its last run's archive holds no CSV" in (
        run.stderr
    )


def test_an_archive_over_the_size_limit_is_refused_and_retried_next_time(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    run = debug_run(demo, tmp_path, settings={"max_uncompressed_bytes": 3000})

    # Its run would be lost if the sync ended well: the others load, the sync fails.
    assert run.returncode == 1, run.stderr[-2000:]
    assert "over the max_uncompressed_bytes setting (3000)" in run.stderr
    assert run.record_counts()["campaigns"] == 10
    assert run.bookmark(POSTS) is None
    assert run.record_counts()["posts"] == 0

    second = debug_run(demo, tmp_path, state=run.final_state)
    assert second.record_counts()["posts"] == 40


def test_a_zip_bomb_is_refused(stand_in: OktopostStandIn, tmp_path: Path) -> None:
    bomb = "Id,Text\n" + "1," + "0" * (30 * 1024 * 1024) + "\n"
    stand_in.add_export(export_with(POSTS, {"Bomb.csv": bomb}))
    run = debug_run(stand_in, tmp_path)

    assert "refusing a likely zip bomb" in run.stderr
    assert run.record_counts()["bomb"] == 0


def test_member_paths_are_read_in_place_never_extracted(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    members = {
        "../../escape.csv": "Id\n1\n",
        "/absolute/abs.csv": "Id\n2\n",
        "a/b/c/deep.csv": "Id\n3\n",
        "a/": "",
        "readme.txt": "not data",
        "Header Only.csv": "Id,Name\r\n",
    }
    stand_in.add_export(export_with(POSTS, members))
    workdir = tmp_path / "work"
    workdir.mkdir()
    run = run_tap(config_for(stand_in), workdir)

    files = {
        r["_sdc_source_file"]: r["id"]
        for s in ("escape", "abs", "deep")
        for r in run.records(s)
    }
    assert files == {"../../escape.csv": 1, "/absolute/abs.csv": 2, "a/b/c/deep.csv": 3}
    assert run.schemas("header_only")[0]["properties"]["name"]["type"] == [
        "string",
        "null",
    ]
    assert run.records("header_only") == []
    assert not list(tmp_path.rglob("escape.csv"))
    assert not Path("/absolute").exists()


def test_odd_csv_files_load_every_value(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    big = "y" * (200 * 1024)
    members: dict[str, str | bytes] = {
        "Utf16.csv": "\ufeffId,Name\r\n1,Grüße\r\n".encode("utf-16-le"),
        "Latin.csv": "Id,Name\n1,Café\n".encode("cp1252"),
        "Nul.csv": b"Id,Name\n1,a\x00b\n",
        "Cr.csv": 'Id,Name\r1,cr\r2,"two\rlines"\r',
        "Big.csv": f'Id,Text\n1,"{big}"\n',
        "Ragged.csv": "Id,Name\n1\n2,b,extra\n",
    }
    stand_in.add_export(export_with(POSTS, members))
    run = debug_run(stand_in, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.records("utf16")[0]["name"] == "Grüße"
    assert run.records("latin")[0]["name"] == "Café"
    assert "file Latin.csv: text that is not UTF-8 was read as Windows-1252" in (
        run.stderr
    )
    assert run.records("nul")[0]["name"] == "ab"
    assert "file Nul.csv: NUL characters were dropped from 1 line(s)" in run.stderr
    assert [r["name"] for r in run.records("cr")] == ["cr", "two\rlines"]
    assert run.records("big")[0]["text"] == big
    ragged = run.records("ragged")
    assert (ragged[0]["name"], ragged[1]["_sdc_extra"]) == (None, ["extra"])


def test_a_damaged_member_names_the_file_and_row(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    rows = [["Id", "Text"], *[[str(n), f"row {n}"] for n in range(1, 5001)]]
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as file:
        file.writestr("Rows.csv", csv_text(rows))
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stand_in.add_export(
        StandInExport(id=POSTS, last_run_date="2026-11-27", archive=bytes(data))
    )
    run = debug_run(stand_in, tmp_path)

    assert run.returncode != 0
    # The whole file is read for its types first, so the damage stops it early.
    assert f"Export {POSTS} (Posts), file Rows.csv: BadZipFile: Bad CRC-32" in (
        run.stderr
    )
    assert "(read for its types before any row went out)" in run.stderr
    assert not run.records("rows_table")
    assert run.bookmark(POSTS) is None


def test_an_unparsable_run_date_names_the_export(
    demo: OktopostStandIn, tmp_path: Path
) -> None:
    demo.set_run(POSTS, demo_exports()[0].archive, "next tuesday")
    run = debug_run(demo, tmp_path)

    assert run.returncode != 0
    assert f"Export {POSTS}: LastRunDate 'next tuesday' is not" in run.stderr
    assert csv_counts(run)["campaigns"] == 10


def run_until_killed(
    config: dict[str, Any], tmp_path: Path, state: dict[str, Any] | None, lines: int
) -> list[dict[str, Any]]:
    """Start a sync, SIGKILL it after `lines` messages, give what it had sent."""
    config_file = tmp_path / "kill-config.json"
    config_file.write_text(json.dumps(config))
    command = [*TAP, "--config", str(config_file)]
    if state is not None:
        state_file = tmp_path / "kill-state.json"
        state_file.write_text(json.dumps(state))
        command += ["--state", str(state_file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_OKTOPOST_")}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert process.stdout is not None
    messages = []
    for line in process.stdout:
        messages.append(json.loads(line))
        if len(messages) >= lines:
            process.send_signal(signal.SIGKILL)
            break
    process.stdout.close()
    process.wait(timeout=60)
    return messages


def keyed_rows(messages: list[dict[str, Any]]) -> dict[tuple[Any, ...], Any]:
    keys: dict[str, list[str]] = {}
    rows = {}
    for message in messages:
        if message["type"] == "SCHEMA":
            keys[message["stream"]] = message["key_properties"]
        elif message["type"] == "RECORD" and "metadata" not in message["stream"]:
            record = message["record"]
            key = (message["stream"], *(record[k] for k in keys[message["stream"]]))
            rows[key] = {k: v for k, v in record.items() if k != "sync_timestamp"}
    return rows


@pytest.mark.parametrize("kill_after", [3, 30, 75, 95])
def test_killed_syncs_resume_from_their_last_state_losing_nothing(
    demo: OktopostStandIn, tmp_path: Path, kill_after: int
) -> None:
    config = config_for(demo)
    expected = keyed_rows(run_tap(config, tmp_path).messages)
    assert len(expected) == sum(ALL_ROWS.values())

    delivered: list[dict[str, Any]] = []
    state: dict[str, Any] | None = None
    for _ in range(2):
        messages = run_until_killed(config, tmp_path, state, kill_after)
        delivered += messages
        states = [m["value"] for m in messages if m["type"] == "STATE"]
        state = states[-1] if states else state
    delivered += run_tap(config, tmp_path, state=state).messages

    assert keyed_rows(delivered) == expected


# -- BATCH files: a sync killed mid-way resumes losing nothing ------------------------

BATCH_EXPORTS = {  # export -> CSV member -> rows: 400 files of 20 rows
    "032000000000301": {"Alpha.csv": 3000, "Beta.csv": 2000},
    "032000000000302": {"Gamma.csv": 3000},
}
BATCH_ROWS = 8000
PIPE_BYTES = 4096
"""The tap's stdout pipe: small, so the tap cannot run far ahead of its reader."""
READ_AHEAD = 3
"""BATCH messages read, after the last one the target gets, before SIGKILL: their
files are sure to exist, announced to no target."""
READER_BUFFER_BYTES = 2 * io.DEFAULT_BUFFER_SIZE
"""What the reader of the tap's stdout may hold beyond the line it parsed: its
binary buffer and its text chunk."""


def numbered_rows(count: int) -> str:
    return csv_text(
        [
            ["Id", "Name", "Score"],
            *[[str(n), f"name {n}", str(3 * n)] for n in range(count)],
        ]
    )


def batch_urls(messages: list[dict[str, Any]]) -> list[str]:
    return [
        url
        for message in messages
        if message["type"] == "BATCH"
        for url in message["manifest"]
    ]


def bytes_after_batch(stdout: str, batches: int) -> int:
    """What a sync writes after its `batches`-th BATCH message."""
    lines = stdout.encode().splitlines(keepends=True)
    seen = 0
    for number, line in enumerate(lines):
        seen += json.loads(line)["type"] == "BATCH"
        if seen == batches:
            return sum(map(len, lines[number + 1 :]))
    return 0


def url_path(url: str) -> Path:
    return Path(url2pathname(urlparse(url).path))


def file_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in batch_file_lines(path)]


def loaded_rows(messages: list[dict[str, Any]]) -> dict[tuple[Any, ...], Any]:
    """The CSV rows of the BATCH files announced, upserted on their key as a target
    loads them: (stream, *key) -> row, the sync's time aside."""
    keys = {
        message["stream"]: message["key_properties"]
        for message in messages
        if message["type"] == "SCHEMA"
    }
    rows = {}
    for message in messages:
        if message["type"] != "BATCH":
            continue
        stream = message["stream"]
        for url in message["manifest"]:
            for record in file_records(url_path(url)):
                key = (stream, *(record[name] for name in keys[stream]))
                rows[key] = {k: v for k, v in record.items() if k != "sync_timestamp"}
    return rows


def tables_bookmarked(state: dict[str, Any] | None) -> set[tuple[str, str]]:
    """(table, export) pairs whose run a state counts as received."""
    return {
        (stream, export_id)
        for export_id, tables in BATCH_EXPORTS.items()
        for stream in (Path(member).stem.lower() for member in tables)
        if (bookmark := read_bookmarks(state).get(export_id))
        and (bookmark.run is not None or bookmark.tables.get(stream) is not None)
    }


def assert_bookmarks_follow_their_files(messages: list[dict[str, Any]]) -> None:
    """Each STATE counts a table's run received only once every row of it was in
    files announced before that STATE."""
    announced: Counter[tuple[str, str]] = Counter()
    for message in messages:
        if message["type"] == "BATCH":
            for url in message["manifest"]:
                for record in file_records(url_path(url)):
                    announced[message["stream"], record["export_id"]] += 1
        elif message["type"] == "STATE":
            for stream, export_id in tables_bookmarked(message["value"]):
                member = f"{stream.title()}.csv"
                assert announced[stream, export_id] == BATCH_EXPORTS[export_id][member]


@dataclass
class StoppedSync:
    """What a target read from a tap stopped by a signal, and the tap's exit."""

    delivered: list[dict[str, Any]]
    unannounced: list[str]
    """Files of BATCH messages the tap wrote that the target never read."""
    returncode: int

    @property
    def final_state(self) -> dict[str, Any] | None:
        states = [m["value"] for m in self.delivered if m["type"] == "STATE"]
        return states[-1] if states else None


def sync_stopped_by_signal(
    config: dict[str, Any], tmp_path: Path, signum: int, after_batches: int
) -> StoppedSync:
    """Start a sync, signal it once its reader has `after_batches` BATCH messages.

    After SIGKILL the target has the messages up to there, as if the tap died right
    after writing them; the tap is killed a few BATCH messages later, so files it
    wrote were announced to no one. After SIGTERM the target reads on to the end, as
    the one in a pipeline would, the tap's last STATE included.
    """
    config_file = tmp_path / "kill-config.json"
    config_file.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_OKTOPOST_")}
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    process = subprocess.Popen(
        [*TAP, "--config", str(config_file)],
        stdout=write_end,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    os.close(write_end)
    delivered: list[dict[str, Any]] = []
    read_ahead: list[dict[str, Any]] = []
    batches = 0
    with open(read_end, encoding="utf-8") as reader:
        for line in reader:
            message = json.loads(line)
            if batches < after_batches or signum == signal.SIGTERM:
                delivered.append(message)
            else:
                read_ahead.append(message)
            if message["type"] != "BATCH":
                continue
            batches += 1
            if batches == after_batches and signum == signal.SIGTERM:
                process.send_signal(signum)
            elif batches == after_batches + READ_AHEAD and signum == signal.SIGKILL:
                process.send_signal(signum)
                break
    returncode = process.wait(timeout=60)
    return StoppedSync(delivered, batch_urls(read_ahead), returncode)


@pytest.mark.parametrize(
    ("signal_name", "after_batches"),
    [
        ("SIGKILL", 10),  # amid the first table
        ("SIGKILL", 160),  # the first table done, amid the second
        ("SIGKILL", 270),  # the first export done, amid the second
        ("SIGTERM", 10),
        ("SIGTERM", 160),
    ],
)
def test_a_sync_sending_batch_files_stopped_mid_way_resumes_losing_nothing(
    stand_in: OktopostStandIn, tmp_path: Path, signal_name: str, after_batches: int
) -> None:
    """A target loads what it was told of before the tap stopped, then what the sync
    resumed from the last STATE it read sends. Files the stopped sync wrote, told of
    or not, stay until the resumed sync starts and deletes them: by then the target
    of the stopped sync has ended (Meltano runs a pipeline's syncs one after the
    other). Files of the running sync are never deleted by it."""
    signum = signal.Signals[signal_name]
    for export_id, members in BATCH_EXPORTS.items():
        stand_in.add_export(
            export_with(
                export_id,
                {member: numbered_rows(count) for member, count in members.items()},
            )
        )
    root = tmp_path / "batches"
    config = config_for(
        stand_in,
        batch_config={
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": root.as_uri()},
            "batch_size": 20,
        },
    )
    full = run_tap(config, tmp_path)
    expected = loaded_rows(full.messages)
    assert len(expected) == BATCH_ROWS
    # The tap is still running when the signal is sent: what it writes after the
    # message the signal follows fits neither in the pipe nor in the reader's buffers.
    signalled_after = after_batches + (READ_AHEAD if signum == signal.SIGKILL else 0)
    assert bytes_after_batch(full.stdout, signalled_after) > (
        PIPE_BYTES + READER_BUFFER_BYTES
    )

    stopped = sync_stopped_by_signal(config, tmp_path, signum, after_batches)

    # Stopped mid-sync: SIGKILL kills; SIGTERM ends the sync with exit 128 + 15.
    assert stopped.returncode == (-9 if signum == signal.SIGKILL else 143)
    assert_bookmarks_follow_their_files(stopped.delivered)
    announced = [url_path(url) for url in batch_urls(stopped.delivered)]
    unannounced = [url_path(url) for url in stopped.unannounced]
    on_disk = set(root.iterdir())
    assert set(announced) <= on_disk
    if signum == signal.SIGKILL:
        assert unannounced
        assert set(unannounced) <= on_disk - set(announced)
    # The target loads the files announced to it before the next sync starts.
    first_load = loaded_rows(stopped.delivered)
    assert 0 < len(first_load) < BATCH_ROWS
    # A target with a file open as the next sync deletes it still reads all of it.
    with announced[-1].open("rb") as held:
        resumed = run_tap(config, tmp_path, state=stopped.final_state)
        assert len(gzip.decompress(held.read()).splitlines()) == 20

    resumed_load = loaded_rows(resumed.messages)
    assert first_load | resumed_load == expected
    # Rows go out again only for the tables whose bookmark had not moved: a key
    # starts with the table and the export.
    resent_tables = {key[:2] for key in resumed_load}
    assert not resent_tables & tables_bookmarked(stopped.final_state)
    # The resumed sync deleted every file of the stopped one, announced or not,
    # and keeps its own until the next sync.
    assert sorted(root.iterdir()) == sorted(
        url_path(url) for url in batch_urls(resumed.messages)
    )

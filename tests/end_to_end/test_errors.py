"""Every message of the Troubleshooting table, produced as a user meets it.

The table is docs/troubleshooting.md. Each case runs the tap's command line against
the stand-in and finds the table's message (its `<...>` and `...` standing for any
text) in the log: a failure is one ERROR line and exit code 1 without a traceback
(failed exports: each one's error, then the `Exports failed` summary last); a warning
leaves the run going.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    TapRun,
    config_for,
    csv_text,
    export_with,
    run_tap,
)
from tests.stand_ins.oktopost_stand_in import (
    OktopostStandIn,
    PagingShape,
    StandInExport,
    demo_exports,
    make_zip,
)

ROOT = Path(__file__).resolve().parents[2]
TROUBLESHOOTING = ROOT / "docs" / "troubleshooting.md"
"""The full table; the README's Troubleshooting shows some of its rows."""
POSTS = "032000000000101"
CAMPAIGNS = "032000000000102"
LOG_LINE = re.compile(r"\| (?P<level>ERROR|WARNING)\s*\| [^|]+\| (?P<message>.*)$")
SUMMARY = "Exports failed ("


def troubleshooting_rows() -> list[tuple[list[str], bool]]:
    """The table's rows: the messages of each, and whether they are warnings."""
    table = TROUBLESHOOTING.read_text(encoding="utf-8")
    rows = []
    for line in table.splitlines():
        if not line.startswith("| ") or line.startswith("| message"):
            continue
        first_cell = line.split(" | ", 1)[0]
        rows.append((re.findall(r"`([^`]+)`", first_cell), "(warning)" in first_cell))
    return rows


def pattern(message: str) -> re.Pattern[str]:
    """The table's message as a regular expression: `<...>` and `...` match text."""
    parts = re.split(r"(<[^>]+>|\.\.\.)", message)
    return re.compile(
        "".join(
            ".*?"
            if part == "..."
            else ".+?"
            if part.startswith("<")
            else re.escape(part)
            for part in parts
        )
    )


@dataclass
class Case:
    """How to meet one message."""

    make: Callable[[OktopostStandIn, Path], TapRun]
    failed_exports: int = 0
    """Exports whose errors come before the `Exports failed` summary."""


CASES: dict[str, Case] = {}
TARGET_MESSAGES = {"Altering columns is not supported"}
"""Messages of a target, not the tap: tests/end_to_end/test_targets.py meets them."""


def case(*messages: str, failed_exports: int = 0) -> Callable[[Any], Any]:
    """Register the function making a run that logs these documented messages."""

    def register(make: Callable[[OktopostStandIn, Path], TapRun]) -> Any:
        for message in messages:
            CASES[message] = Case(make, failed_exports)
        return make

    return register


def tap(stand_in: OktopostStandIn, tmp_path: Path, **kwargs: Any) -> TapRun:
    """A sync of the demo exports (unless the stand-in has others), never checked."""
    if not stand_in._exports:
        for export in demo_exports():
            stand_in.add_export(export)
    settings = kwargs.pop("settings", {})
    return run_tap(config_for(stand_in, **settings), tmp_path, check=False, **kwargs)


@case("Config validation error: 'api_key' is a required property")
def missing_api_key(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    config = config_for(stand_in)
    del config["api_key"]
    return run_tap(config, tmp_path, check=False)


@case("Config validation error: Setting <name> fails the rule ...")
def base_url_not_a_url(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    run = tap(stand_in, tmp_path, settings={"base_url": "api.oktopost.com/v2"})
    assert "Setting base_url fails the rule pattern" in run.stderr
    return run


@case(
    "Config validation error: The base_url setting holds a user name or password "
    "(user:password@); ..."
)
def base_url_with_password(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    base_url = stand_in.base_url.replace("http://", "http://bi:Pa55word@")
    run = tap(stand_in, tmp_path, settings={"base_url": base_url})
    assert "Pa55word" not in run.stderr
    return run


@case(
    "Config validation error: Setting primary_keys: stream <name> has no column <col>"
)
def key_column_missing(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    return tap(stand_in, tmp_path, settings={"primary_keys": {"posts": ["postid"]}})


@case("Setting column_types: stream <name> has no column <col>")
def pinned_column_missing(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    settings = {"column_types": {"posts": {"clickz": "string"}}}
    run = tap(stand_in, tmp_path, settings=settings)
    assert "stream posts has no column clickz" in run.stderr
    return run


@case("Setting primary_keys: no CSV stream is named <name> (the streams: ...)")
def key_stream_missing(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    run = tap(stand_in, tmp_path, settings={"primary_keys": {"post": ["post_id"]}})
    assert (
        "no CSV stream is named post (the streams: campaigns, post_stats, posts)"
        in (run.stderr)
    )
    return run


@case("Unknown setting <name> is ignored; did you mean <setting>?")
def misspelt_setting(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    run = tap(stand_in, tmp_path, settings={"export_id": POSTS})
    assert "Unknown setting export_id is ignored; did you mean export_ids?" in (
        run.stderr
    )
    return run


@case("State: <place> is ..., not ...; fix it, or clear it ...")
def state_of_another_layout(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    stream_state = {"partitions": {"context": {"Id": POSTS}}}
    state = {"bookmarks": {"active_export_metadata": stream_state}}
    run = tap(stand_in, tmp_path, state=state)
    assert "active_export_metadata.partitions is an object, not a list" in run.stderr
    return run


@case("State: the --state file is not JSON ...")
def state_file_cut_short(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    state_file = tmp_path / "cut-short-state.json"
    state_file.write_text('{"bookmarks": {"active_export_metadata": ')
    return tap(stand_in, tmp_path, extra_args=["--state", str(state_file)])


@case(
    "... HTTP 401, check the account_id and api_key settings, and that base_url is "
    "your account's region (US or EU)..."
)
def wrong_api_key(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    return tap(stand_in, tmp_path, settings={"api_key": "wrong"}, extra_args=["--test"])


@case("... HTTP 403, the API key's user lacks permission ...")
def no_permission(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    stand_in.fail_next("/v2/bi-export?", 403)
    return tap(stand_in, tmp_path)


@case(
    "Export <id>: HTTP 404, check the export id (export_ids / test_export_id "
    "settings) ...",
    "Exports failed (<n>), the others loaded: ...",
    failed_exports=1,
)
def unknown_export_id(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    return tap(stand_in, tmp_path, settings={"export_ids": ["032000000000999", POSTS]})


@case(
    "... HTTP 404, no such API path: check the base_url setting, the API root "
    "ending in /v2 ..."
)
def base_url_without_v2(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    base_url = stand_in.base_url.removesuffix("/v2")
    return tap(stand_in, tmp_path, settings={"base_url": base_url})


@case(
    "... could not reach <url>; check the base_url setting and the network "
    "(ConnectionError)"
)
def unreachable(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    settings = {"base_url": "http://127.0.0.1:9/v2", "max_retries": 0}
    return tap(stand_in, tmp_path, settings=settings)


@case("... HTTP 502 from Oktopost: retry <n> of <max> in <seconds> s...")
def passing_502(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    stand_in.fail_next(f"/v2/bi-export/{POSTS}", 502, headers={"Retry-After": "0"})
    return tap(stand_in, tmp_path)


@case("... Oktopost's rate limit (HTTP 429): retry <n> of <max> in <seconds> s...")
def rate_limited(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    stand_in.fail_next("/v2/bi-export?", 429, headers={"Retry-After": "0"})
    return tap(stand_in, tmp_path)


@case("... Oktopost answered Result false: ...", failed_exports=1)
def result_false(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    body = b'{"Result": false, "Errors": {"API": {"Error": "Export locked"}}}'
    stand_in.fail_next(f"/v2/bi-export/{POSTS}", 200, body=body, times=2)
    return tap(stand_in, tmp_path)


@case("... Oktopost answered HTTP <status> with no JSON: ...", failed_exports=1)
def not_json(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    body = b"<html>Proxy login</html>"
    stand_in.fail_next(f"/v2/bi-export/{POSTS}", 200, body=body, times=2)
    return tap(stand_in, tmp_path)


@case(
    "Export <id>: LastRunDate '...' is not epoch seconds or milliseconds, "
    "ISO 8601, 'YYYY-MM-DD HH:MM:SS' or a date, since 1970",
    failed_exports=1,
)
def odd_run_date(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    for export in demo_exports():
        stand_in.add_export(export)
    stand_in.set_run(POSTS, demo_exports()[0].archive, "next tuesday")
    return tap(stand_in, tmp_path)


@case("Export <id>: LastRunFile is a JSON <type>, not a link", failed_exports=1)
def link_of_another_type(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    return tap_with_detail(stand_in, tmp_path, {"LastRunFile": {"Url": "x"}})


@case(
    "Export <id>: LastRunFile has the scheme '...', not http or https",
    failed_exports=1,
)
def link_of_another_scheme(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    link = "ftp://files.oktopost.com/2026-11-27-Posts.zip?X-Amz-Signature=abc"
    return tap_with_detail(stand_in, tmp_path, {"LastRunFile": link})


@case(
    "Export <id>: LastRunFile is set but LastRunDate is empty and the file name "
    "holds no date: ...",
    failed_exports=1,
)
def run_without_date(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    for export in demo_exports():
        stand_in.add_export(export)
    stand_in.set_run(POSTS, demo_exports()[0].archive, None, archive_name="Posts.zip")
    return tap(stand_in, tmp_path)


def tap_with_detail(
    stand_in: OktopostStandIn, tmp_path: Path, fields: dict[str, Any]
) -> TapRun:
    """A sync of the demo exports, the posts export's detail sending these fields."""
    for export in demo_exports():
        if export.id == POSTS:
            export.detail_fields = fields
        stand_in.add_export(export)
    return tap(stand_in, tmp_path)


@case(
    "Export <id>: downloading <file>: HTTP 403, the signed link expired or was "
    "refused (retried with a fresh link)..."
)
def expired_link(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    stand_in.fail_next(f"/storage/{POSTS}", 403)
    return tap(stand_in, tmp_path)


@case("Export <id> (<Type>): its last run's file is a PDF report, not a ZIP archive...")
def pdf_report(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    for export in demo_exports():
        stand_in.add_export(export)
    stand_in.set_run(POSTS, b"%PDF-1.7 a report", "2026-11-28 10:00:00")
    return tap(stand_in, tmp_path)


@case("Export <id> (<Type>): its last run's archive holds no CSV file")
def excel_export(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    stand_in.add_export(export_with(POSTS, {"xl/sheet1.xml": "<x/>"}))
    return tap(stand_in, tmp_path)


@case("... over the max_uncompressed_bytes setting ...")
def too_large(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    return tap(stand_in, tmp_path, settings={"max_uncompressed_bytes": 3000})


@case("... refusing a likely zip bomb")
def zip_bomb(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    bomb = "Id,Text\n1," + "0" * (30 * 1024 * 1024) + "\n"
    stand_in.add_export(export_with(POSTS, {"Bomb.csv": bomb}))
    return tap(stand_in, tmp_path)


@case(
    "Export <id>: a new run (<date>) replaced the run being loaded (<date>); the "
    "next sync loads it",
    failed_exports=1,
)
def new_run_mid_sync(
    stand_in: OktopostStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> TapRun:
    catalog = tap(stand_in, tmp_path, discover=True).messages[0]
    # The export runs again just as its link is refused: the fresh link is the
    # new run's.
    stand_in.fail_next(f"/storage/{POSTS}", 403)
    take_failure = stand_in._take_failure

    def refuse_and_run_again(path: str) -> Any:
        failure = take_failure(path)
        if failure is not None and path.startswith("/storage/"):
            stand_in.set_run(POSTS, demo_exports()[0].archive, "2026-11-28 10:00:00")
        return failure

    monkeypatch.setattr(stand_in, "_take_failure", refuse_and_run_again)
    return tap(stand_in, tmp_path, catalog=catalog)


@case(
    "Export <id> (<Type>), file <name>: ... (read for its types before any row went "
    "out)",
    failed_exports=1,
)
def damaged_member(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    rows = [["Id", "Text"], *[[str(n), f"row {n}"] for n in range(1, 5001)]]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("Rows.csv", csv_text(rows))
    data = bytearray(buffer.getvalue())
    data[len(data) // 2] ^= 0xFF
    stand_in.add_export(
        StandInExport(id=POSTS, last_run_date="2026-11-27", archive=bytes(data))
    )
    return tap(stand_in, tmp_path)


@case(
    "Export <id>, file <name>: NUL characters were dropped from <n> line(s), the "
    "first line <n>",
    "... file <name>: text that is not UTF-8 was read as Windows-1252",
    "... file <name>: <n> damaged byte sequence(s) that are not UTF-8 were replaced "
    "by U+FFFD, the first on line <n>",
    "... file <name>: <n> row(s) equal to the header were skipped, not loaded as "
    "data: row(s) <n>",
)
def odd_text(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    members: dict[str, str | bytes] = {
        "Latin.csv": "Id,Name\n1,Café\n".encode("cp1252"),
        "Nul.csv": b"Id,Name\n1,a\x00b\n",
        "Damaged.csv": "Id,Name\n1,Zoë\n2,Zo".encode() + b"\xc3\n",
        "Joined.csv": b"Id,Name\n1,a\nId,Name\n2,b\n",
    }
    stand_in.add_export(export_with(POSTS, members))
    return tap(stand_in, tmp_path)


@case(
    "... file <name>...: cannot tell the CSV separator: the header line holds <s> "
    "and <s> <n> time(s) each, outside quotes, and the next line does not settle it",
    failed_exports=1,
)
def unknown_separator(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    stand_in.add_export(export_with(POSTS, {"Mixed.csv": "Id,Name\n1,2\n"}))
    catalog = tap(stand_in, tmp_path, discover=True).messages[0]
    mixed = make_zip({"Mixed.csv": "Id;Name,Note\n1;2,3\n"})
    stand_in.set_run(POSTS, mixed, "2026-11-28 10:00:00")
    return tap(stand_in, tmp_path, catalog=catalog)


@case(
    "... column <c> holds '<text>', which does not fit its type, <type>, as the "
    "column_types setting pins it..."
)
def unfit_value(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    leads = csv_text([["Lead ID", "Clicks"], ["1", "3"], ["2", "n/a"]])
    stand_in.add_export(export_with(POSTS, {"Leads.csv": leads}))
    settings = {"column_types": {"leads": {"clicks": "integer"}}}
    return tap(stand_in, tmp_path, settings=settings)


@case(
    "Export <id>: its run of <date> has files for tables the catalog lacks "
    "(<tables>)...",
    failed_exports=1,
)
def catalog_lacks_a_table(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    catalog = tap(stand_in, tmp_path, discover=True).messages[0]
    catalog["streams"] = [
        entry for entry in catalog["streams"] if entry["tap_stream_id"] != "campaigns"
    ]
    return tap(stand_in, tmp_path, catalog=catalog)


@case(
    "Stream <s>, column <c>: the catalog says <type>, this sync sends <wider>: "
    "export <id>'s file holds values the catalog's type does not fit ..."
)
def sampled_catalog_narrower_than_the_file(
    stand_in: OktopostStandIn, tmp_path: Path
) -> TapRun:
    rows = [["Lead ID", "Clicks"], *([str(n), str(n)] for n in range(3000))]
    rows[2500][1] = "n/a"
    stand_in.add_export(export_with(POSTS, {"Leads.csv": csv_text(rows)}))
    sampled = {"whole_file_discovery_bytes": 0}
    catalog = tap(stand_in, tmp_path, settings=sampled, discover=True).messages[0]
    return tap(stand_in, tmp_path, settings=sampled, catalog=catalog)


@case(
    "Stream <s>, column <c>: the catalog says <type>, this sync sends <type>: the "
    "column_typing setting and the state's column types say so"
)
def state_type_kept_against_the_catalog(
    stand_in: OktopostStandIn, tmp_path: Path
) -> TapRun:
    stand_in.add_export(
        export_with(POSTS, {"Leads.csv": csv_text([["Lead ID", "Clicks"], ["1", "3"]])})
    )
    state = tap(stand_in, tmp_path).final_state
    later = make_zip({"Leads.csv": csv_text([["Lead ID", "Clicks"], ["2", "n/a"]])})
    stand_in.set_run(POSTS, later, "2026-11-28 10:00:00")
    catalog = tap(stand_in, tmp_path, discover=True).messages[0]
    return tap(stand_in, tmp_path, catalog=catalog, state=state)


@case(
    "... HTTP <status>, the file is gone from storage; a newer run may have replaced "
    "it, and the next sync loads that",
    failed_exports=1,
)
def file_gone_from_storage(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    stand_in.fail_next(f"/storage/{POSTS}/", 404, times=10)
    return tap(stand_in, tmp_path)


@case("Discovery leaves export <id> out of the catalog: ...")
def export_unreadable_at_discovery(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    return tap(stand_in, tmp_path, settings={"max_archive_bytes": 100}, discover=True)


@case("Streams <a> and <b> differ only by case (after stream_maps): ...")
def stream_names_differing_by_case(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    return tap(
        stand_in,
        tmp_path,
        settings={"stream_maps": {"posts": {"__alias__": "Campaigns"}}},
    )


@case(
    "Setting primary_keys: table <t> is keyed by <cols>, but export <id>'s file <f> "
    "has no column <c>...",
    failed_exports=1,
)
def file_without_a_key_column(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    keyed = csv_text([["Post ID", "Clicks"], ["1", "3"]])
    unkeyed = csv_text([["Clicks"], ["4"]])
    stand_in.add_export(export_with(POSTS, {"Posts.csv": keyed}))
    stand_in.add_export(export_with(CAMPAIGNS, {"Posts.csv": unkeyed}))
    settings = {"primary_keys": {"posts": ["post_id"]}}
    return tap(stand_in, tmp_path, settings=settings)


@case(
    "Export <id>: its run of <date> is dated before the run already loaded "
    "(<date>); loading it"
)
def run_dated_back(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    leads: dict[str, str | bytes] = {"Leads.csv": csv_text([["Lead ID"], ["1"]])}
    stand_in.add_export(export_with(POSTS, leads, "2026-11-02"))
    state = tap(stand_in, tmp_path).final_state
    stand_in.set_run(POSTS, make_zip(leads), "2026-11-01")
    return tap(stand_in, tmp_path, state=state)


@case(
    "Export <id>: a run dated <date> was loaded before, from file <f>; this run's "
    "file, <f>, loads under the same key ..."
)
def run_dated_like_an_earlier_one(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    leads: dict[str, str | bytes] = {"Leads.csv": csv_text([["Lead ID"], ["1"]])}
    stand_in.add_export(export_with(POSTS, leads, "2026-11-01"))
    state = tap(stand_in, tmp_path).final_state
    stand_in.set_run(POSTS, make_zip(leads), "2026-11-01", "rerun.zip")
    return tap(stand_in, tmp_path, state=state)


@case(
    "Stream <s>, file <f>, row <n>: column <c> holds '<text>', which does not fit "
    "its type, <type>, the type its table has had since an earlier sync. To widen "
    "the column for good, set column_types {...} ..."
)
def unfit_value_of_a_later_run(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    header = ["Lead ID", "Clicks"]
    first = csv_text([header, ["1", "3"]])
    stand_in.add_export(export_with(POSTS, {"Leads.csv": first}, "2026-11-01"))
    state = tap(stand_in, tmp_path).final_state
    later = csv_text([header, ["2", "n/a"]])
    stand_in.set_run(POSTS, make_zip({"Leads.csv": later}), "2026-11-02")
    return tap(stand_in, tmp_path, state=state)


@case(
    "... its Retry-After header asks for a wait of <seconds> s, past the tap's cap "
    "of 3600 s, so the call fails now instead of waiting; try again after <time> UTC"
)
def retry_after_of_years(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    stand_in.fail_next("/v2/bi-export", 429, headers={"Retry-After": "1000000000"})
    return tap(stand_in, tmp_path)


@case(
    "Listing exports was cut short: ... The <n> exports listed still load, and the "
    "sync ends with an error...",
    failed_exports=1,
)
def endless_listing(stand_in: OktopostStandIn, tmp_path: Path) -> TapRun:
    stand_in.paging = PagingShape(endless=True)
    return tap(stand_in, tmp_path)


def test_every_troubleshooting_message_has_a_case() -> None:
    documented = {
        message for messages, _ in troubleshooting_rows() for message in messages
    }
    assert documented - TARGET_MESSAGES == set(CASES)


WARNINGS = {
    message
    for messages, warning in troubleshooting_rows()
    for message in messages
    if warning
}


@pytest.mark.parametrize("message", sorted(CASES))
def test_the_tap_says_what_the_readme_says(
    message: str,
    stand_in: OktopostStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make = CASES[message].make
    arguments: dict[str, Any] = (
        {"monkeypatch": monkeypatch}
        if "monkeypatch" in make.__code__.co_varnames
        else {}
    )
    run = make(stand_in, tmp_path, **arguments)

    logged = [
        found for line in run.stderr.splitlines() if (found := LOG_LINE.search(line))
    ]
    errors = [found["message"] for found in logged if found["level"] == "ERROR"]
    warnings = [found["message"] for found in logged if found["level"] == "WARNING"]
    expected = pattern(message)
    assert "Traceback" not in run.stderr
    assert "unhandled" not in run.stderr
    if message in WARNINGS:
        assert any(expected.search(line) for line in warnings), run.stderr[-3000:]
        return
    assert run.returncode == 1, run.stderr[-3000:]
    failed = CASES[message].failed_exports
    if failed:
        assert len(errors) == failed + 1, errors
        assert errors[-1].startswith(SUMMARY)
        assert any(expected.search(line) for line in errors), errors
    else:
        assert len(errors) == 1, errors
        assert expected.search(errors[0]), errors

"""Real loads through Meltano into PostgreSQL, JSONL files and DuckDB, read back.

The tests run `meltano run tap-oktopost <target>` in the `test` environment of
meltano.yml against a stand-in started in this process, then check what a user
would check in the destination. PostgreSQL is the throwaway server of
scripts/postgres.sh (`make test` starts it; the session fixture does too).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tap_oktopost.csv_data import DEFAULT_KEY
from tap_oktopost.ledger import read_bookmarks
from tests.conftest import config_for, csv_text, run_tap
from tests.oktopost_stand_in import (
    OktopostStandIn,
    StandInExport,
    demo_exports,
    make_zip,
)

pytestmark = pytest.mark.slow  # `make test-fast` leaves these out

ROOT = Path(__file__).resolve().parent.parent
MELTANO = Path(sys.executable).parent / "meltano"
LOADERS = ROOT / ".meltano" / "loaders"
POSTGRES = {
    "host": "127.0.0.1",
    "port": os.environ.get("TEST_PG_PORT", "55432"),
    "user": "oktopost",
    "password": "oktopost",
    "database": "oktopost",
}
DEMO_COUNTS = {
    "posts": 40,
    "post_stats": 20,
    "campaigns": 10,
    "export_list_metadata": 4,
    "active_export_metadata": 3,
}
POSTS_EXPORT = "032000000000101"
CAMPAIGNS_EXPORT = "032000000000102"
NEVER_RUN_EXPORT = "032000000000104"
TIMESTAMP = (
    "timestamp without time zone"  # what target-postgres 0.8.1 makes of date-time
)

# -- PostgreSQL -----------------------------------------------------------------


def psql_path() -> str:
    """Debian's psql: on PATH, else in the newest /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("psql")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    if not candidates:
        pytest.fail("psql not found: run scripts/postgres.sh (make test does)")
    return str(candidates[-1])


def sql(query: str, **variables: str) -> list[list[str]]:
    """Run a query on the test server; values come back as text.

    The query names variables as psql does: `:"schema"` (an identifier), `:'value'`.
    """
    options = [
        arg for name, value in variables.items() for arg in ("-v", f"{name}={value}")
    ]
    done = subprocess.run(
        [
            psql_path(),
            "-X",
            "-q",
            "--csv",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            *options,
            "-h",
            POSTGRES["host"],
            "-p",
            POSTGRES["port"],
            "-U",
            POSTGRES["user"],
            "-d",
            POSTGRES["database"],
            "-f",
            "-",
        ],
        input=query,
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": POSTGRES["password"], "PGTZ": "UTC"},
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"psql failed: {done.stderr}")
    return list(csv.reader(io.StringIO(done.stdout)))


def row_counts(schema: str) -> dict[str, int]:
    """Every table of a schema and its number of rows."""
    tables = sql(
        "select table_name from information_schema.tables "
        "where table_schema = :'schema' order by table_name",
        schema=schema,
    )
    return {
        table: int(sql('select count(*) from :"s".:"t"', s=schema, t=table)[0][0])
        for (table,) in tables
    }


def column_types(schema: str, table: str) -> dict[str, str]:
    """Column name -> PostgreSQL data type."""
    rows = sql(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = :'schema' and table_name = :'table'",
        schema=schema,
        table=table,
    )
    return {row[0]: row[1] for row in rows}


def primary_key(schema: str, table: str) -> set[str]:
    """The columns of a table's primary key constraint."""
    rows = sql(
        "select kcu.column_name from information_schema.table_constraints tc "
        "join information_schema.key_column_usage kcu "
        "using (constraint_schema, constraint_name) "
        "where tc.table_schema = :'schema' and tc.table_name = :'table' "
        "and tc.constraint_type = 'PRIMARY KEY'",
        schema=schema,
        table=table,
    )
    return {name for (name,) in rows}


# -- Meltano ----------------------------------------------------------------------


def meltano_env(database: Path) -> dict[str, str]:
    """The environment of every Meltano command: this session's system database."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TAP_OKTOPOST_", "TARGET_", "MELTANO_", "PG"))
    }
    env.update(
        {
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_DATABASE_URI": f"sqlite:///{database}",
            "TARGET_POSTGRES_PORT": POSTGRES["port"],
        }
    )
    return env


def meltano(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run a Meltano command of the project in its `test` environment."""
    done = subprocess.run(
        [str(MELTANO), "--environment=test", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"meltano {' '.join(args)} exited {done.returncode}:\n{done.stderr[-6000:]}"
        )
    return done


@pytest.fixture(scope="session")
def meltano_base_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Start PostgreSQL and install the project's plugins, once per session."""
    subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "start"], check=True)
    env = meltano_env(tmp_path_factory.mktemp("meltano") / "meltano.db")
    meltano(env, "install")
    return env


@dataclass
class Project:
    """One test's pipelines: its own stand-in, state ids, schema and files."""

    env: dict[str, str]
    stand_in: OktopostStandIn
    suffix: str
    schema: str
    folder: Path

    def run(self, target: str, *options: str) -> subprocess.CompletedProcess[str]:
        """`meltano run tap-oktopost <target>` with this test's state id."""
        return meltano(
            self.env,
            "run",
            f"--state-id-suffix={self.suffix}",
            *options,
            "tap-oktopost",
            target,
        )

    def state(self, target: str) -> dict[str, Any]:
        """The Singer state Meltano keeps for the pipeline into `target`."""
        state_id = f"test:tap-oktopost-to-{target}:{self.suffix}"
        done = meltano(self.env, "state", "get", state_id)
        state: dict[str, Any] = json.loads(done.stdout)["singer_state"]
        return state

    def bookmarks(self, target: str) -> dict[str, str | None]:
        """Export id -> the LastRunDate of its last loaded run, from Meltano's state."""
        return {
            export_id: bookmark.run
            for export_id, bookmark in read_bookmarks(self.state(target)).items()
        }


@pytest.fixture
def project(
    meltano_base_env: dict[str, str], stand_in: OktopostStandIn, tmp_path: Path
) -> Any:
    """Meltano pointed at this test's stand-in, loading into places of its own."""
    suffix = uuid.uuid4().hex[:12]
    schema = f"test_{suffix}"
    env = {
        **meltano_base_env,
        "TAP_OKTOPOST_BASE_URL": stand_in.base_url,
        "TAP_OKTOPOST_ACCOUNT_ID": stand_in.account_id,
        "TAP_OKTOPOST_API_KEY": stand_in.api_key,
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "jsonl"),
        "TARGET_DUCKDB_FILEPATH": str(tmp_path / "test.duckdb"),
        "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": schema,
    }
    yield Project(env, stand_in, suffix, schema, tmp_path)
    sql('drop schema if exists :"schema" cascade', schema=schema)


@pytest.fixture
def demo(project: Project) -> Project:
    """The project, its stand-in serving the demo exports."""
    for export in demo_exports():
        project.stand_in.add_export(export)
    return project


def demo_posts() -> list[dict[str, str]]:
    """The rows of the demo's Posts CSV, as the file holds them."""
    archive = demo_exports()[0].archive
    assert archive is not None
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        text = zipped.read("2026-11-27-Posts.csv").decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


# -- PostgreSQL loads ---------------------------------------------------------------


def test_postgres_holds_the_demo_typed_and_keyed(demo: Project) -> None:
    demo.run("target-postgres")

    assert row_counts(demo.schema) == DEMO_COUNTS
    assert column_types(demo.schema, "posts") == {
        "export_id": "text",
        "sync_timestamp": TIMESTAMP,
        "_sdc_source_file": "text",
        "_sdc_row_number": "bigint",
        "_sdc_export_run_at": TIMESTAMP,
        "_sdc_extra": "ARRAY",
        "post_id": "text",
        "network": "text",
        "message": "text",
        "clicks": "bigint",
        "engagement_rate": "numeric",
        "is_boosted": "boolean",
        "created_at": TIMESTAMP,
        "campaign": "text",
        # target-postgres's own metadata columns
        "_sdc_extracted_at": TIMESTAMP,
        "_sdc_received_at": TIMESTAMP,
        "_sdc_batched_at": TIMESTAMP,
        "_sdc_deleted_at": TIMESTAMP,
        "_sdc_sequence": "bigint",
        "_sdc_table_version": "bigint",
        "_sdc_sync_started_at": "bigint",
    }
    assert column_types(demo.schema, "campaigns")["start_date"] == "date"
    assert column_types(demo.schema, "post_stats")["impressions"] == "bigint"
    assert column_types(demo.schema, "active_export_metadata")["Destination"] == (
        "jsonb"
    )
    for table in ("posts", "post_stats", "campaigns"):
        assert primary_key(demo.schema, table) == set(DEFAULT_KEY)
    for table in ("export_list_metadata", "active_export_metadata"):
        assert primary_key(demo.schema, table) == {"Id"}

    # The posts table holds the CSV's rows, values and all.
    loaded = sql(
        "select _sdc_row_number, post_id, network, message, clicks, engagement_rate, "
        "is_boosted, created_at, coalesce(campaign, ''), export_id, "
        '_sdc_export_run_at, _sdc_source_file from :"schema".posts '
        "order by _sdc_row_number",
        schema=demo.schema,
    )
    expected = [
        [
            str(number),
            row["Post ID"],
            row["Network"],
            row["Message"],
            row["Clicks"],
            row["Engagement Rate"],
            {"true": "t", "false": "f"}[row["Is Boosted"]],
            row["Created At"],
            row["Campaign"],
            POSTS_EXPORT,
            "2026-11-27 10:00:00",
            "2026-11-27-Posts.csv",
        ]
        for number, row in enumerate(demo_posts(), start=1)
    ]
    assert loaded == expected
    assert sql(
        'select "Id", "LastRunDate", "LastRunFile" '
        'from :"schema".active_export_metadata order by "Id"',
        schema=demo.schema,
    ) == [
        [POSTS_EXPORT, "2026-11-27 10:00:00", "2026-11-27-Posts-Report.zip"],
        [CAMPAIGNS_EXPORT, "2026-11-23 10:00:00", "2026-11-23-Campaigns-Report.zip"],
        [NEVER_RUN_EXPORT, "", ""],
    ]
    destinations = sql(
        'select "Destination"::text from :"schema".export_list_metadata',
        schema=demo.schema,
    )
    assert not any("Pa55word" in text for (text,) in destinations)

    # Meltano keeps one bookmark per export that has run.
    assert demo.bookmarks("target-postgres") == {
        POSTS_EXPORT: "2026-11-27T10:00:00+00:00",
        CAMPAIGNS_EXPORT: "2026-11-23T10:00:00+00:00",
        NEVER_RUN_EXPORT: None,
    }

    # No new export run: a second run adds nothing.
    demo.run("target-postgres")
    assert row_counts(demo.schema) == DEMO_COUNTS


def test_postgres_adds_a_new_run_and_full_refresh_reloads(demo: Project) -> None:
    demo.run("target-postgres")

    new_posts = [["Post ID", "Clicks"], *[[f"{n:07d}", str(n)] for n in range(5)]]
    new_stats = [["Post ID", "Impressions"], ["0000001", "7"], ["0000002", "8"]]
    demo.stand_in.set_run(
        POSTS_EXPORT,
        make_zip(
            {
                "2026-11-28-Posts.csv": csv_text(new_posts),
                "reports/Post Stats.csv": csv_text(new_stats),
            }
        ),
        "2026-11-28 10:00:00",
        archive_name="2026-11-28-Posts-Report.zip",
    )
    demo.run("target-postgres")

    after_new_run = {**DEMO_COUNTS, "posts": 45, "post_stats": 22}
    assert row_counts(demo.schema) == after_new_run
    assert sql(
        'select _sdc_export_run_at, count(*) from :"schema".posts '
        "group by 1 order by 1",
        schema=demo.schema,
    ) == [["2026-11-27 10:00:00", "40"], ["2026-11-28 10:00:00", "5"]]
    assert demo.bookmarks("target-postgres")[POSTS_EXPORT] == (
        "2026-11-28T10:00:00+00:00"
    )
    [[second_sync]] = sql(
        'select max(sync_timestamp) from :"schema".posts', schema=demo.schema
    )

    # A full refresh delivers each export's current run again: the default key
    # upserts it, so no row is added, and the rows it delivered are the new ones.
    demo.run("target-postgres", "--full-refresh")
    assert row_counts(demo.schema) == after_new_run
    refreshed = sql(
        "select 'posts', count(*) from :\"schema\".posts "
        "where sync_timestamp > :'since' "
        "union all select 'post_stats', count(*) from :\"schema\".post_stats "
        "where sync_timestamp > :'since' "
        "union all select 'campaigns', count(*) from :\"schema\".campaigns "
        "where sync_timestamp > :'since' order by 1",
        schema=demo.schema,
        since=second_sync,
    )
    assert refreshed == [["campaigns", "10"], ["post_stats", "2"], ["posts", "5"]]


LEADS_EXPORT = "032000000000201"


def leads_run(rows: list[list[str]]) -> bytes:
    """The archive of a run holding one Leads CSV with these rows (header first)."""
    return make_zip({"Leads.csv": csv_text(rows)})


def test_postgres_takes_an_added_and_a_dropped_column(project: Project) -> None:
    stand_in = project.stand_in
    leads_query = 'select lead_id, clicks, note from :"schema".leads order by 1'
    first = [["Lead ID", "Clicks", "Note"], ["0001", "3", "first"], ["0002", "4", "x"]]
    stand_in.add_export(
        StandInExport(
            id=LEADS_EXPORT,
            last_run_date="2026-11-01 10:00:00",
            archive=leads_run(first),
        )
    )
    project.run("target-postgres")
    assert sql(leads_query, schema=project.schema) == [
        ["0001", "3", "first"],
        ["0002", "4", "x"],
    ]

    added = [["Lead ID", "Clicks", "Note", "Score"], ["0003", "5", "y", "90"]]
    stand_in.set_run(LEADS_EXPORT, leads_run(added), "2026-11-02 10:00:00")
    project.run("target-postgres")
    assert column_types(project.schema, "leads")["score"] == "bigint"
    leads_query = 'select lead_id, clicks, note, score from :"schema".leads order by 1'
    assert sql(leads_query, schema=project.schema) == [
        ["0001", "3", "first", ""],
        ["0002", "4", "x", ""],
        ["0003", "5", "y", "90"],
    ]

    dropped = [["Lead ID", "Clicks"], ["0004", "6"]]
    stand_in.set_run(LEADS_EXPORT, leads_run(dropped), "2026-11-03 10:00:00")
    project.run("target-postgres")
    assert sql(leads_query, schema=project.schema) == [
        ["0001", "3", "first", ""],
        ["0002", "4", "x", ""],
        ["0003", "5", "y", "90"],
        ["0004", "6", "", ""],
    ]


@pytest.mark.parametrize(
    ("first", "later", "pinned", "expected"),
    [
        pytest.param(
            "3", "", None, [["0001", "3"], ["0002", ""]], id="integer-empty-in-a-run"
        ),
        pytest.param(
            "n/a", "7", None, [["0001", "n/a"], ["0002", "7"]], id="text-gets-integers"
        ),
        pytest.param(
            "3",
            "n/a",
            "string",
            [["0001", "3"], ["0002", "n/a"]],
            id="integer-gets-text",
        ),
        pytest.param(
            "3",
            "3.25",
            "number",
            [["0001", "3"], ["0002", "3.25"]],
            id="integer-gets-decimals",
        ),
        pytest.param(
            "2026-11-01",
            "2026-11-02 10:30:00",
            "date-time",
            [["0001", "2026-11-01 00:00:00"], ["0002", "2026-11-02 10:30:00"]],
            id="date-gets-times",
        ),
    ],
)
def test_postgres_takes_a_later_run_with_another_column_type(
    project: Project,
    first: str,
    later: str,
    pinned: str | None,
    expected: list[list[str]],
) -> None:
    """A column keeps its type from run to run (state remembers it); a column
    whose values change kind is pinned with column_types, because target-postgres
    0.8.1 cannot alter a column's type."""
    if pinned:
        project.env["TAP_OKTOPOST_COLUMN_TYPES"] = json.dumps(
            {"leads": {"value": pinned}}
        )
    stand_in = project.stand_in
    header = ["Lead ID", "Value"]
    stand_in.add_export(
        StandInExport(
            id=LEADS_EXPORT,
            last_run_date="2026-11-01 10:00:00",
            archive=leads_run([header, ["0001", first]]),
        )
    )
    project.run("target-postgres")
    stand_in.set_run(
        LEADS_EXPORT, leads_run([header, ["0002", later]]), "2026-11-02 10:00:00"
    )
    project.run("target-postgres")
    loaded = sql(
        'select lead_id, value::text from :"schema".leads order by 1',
        schema=project.schema,
    )
    assert loaded == expected


def test_postgres_takes_a_pinned_column_with_a_late_odd_value(project: Project) -> None:
    project.env["TAP_OKTOPOST_COLUMN_TYPES"] = json.dumps(
        {"leads": {"clicks": "string"}}
    )
    rows = [["Lead ID", "Clicks"]]
    rows += [[f"L{n:05d}", str(n)] for n in range(2000)]  # all discovery reads
    rows += [["L02000", "n/a"], ["L02001", "12"]]
    project.stand_in.add_export(
        StandInExport(
            id=LEADS_EXPORT,
            last_run_date="2026-11-01 10:00:00",
            archive=leads_run(rows),
        )
    )
    project.run("target-postgres")
    assert column_types(project.schema, "leads")["clicks"] == "text"
    assert sql('select count(*) from :"schema".leads', schema=project.schema) == [
        ["2002"]
    ]
    assert sql(
        'select lead_id, clicks::text from :"schema".leads '
        "where lead_id in ('L00000', 'L01999', 'L02000', 'L02001') order by 1",
        schema=project.schema,
    ) == [["L00000", "0"], ["L01999", "1999"], ["L02000", "n/a"], ["L02001", "12"]]


# -- JSONL and DuckDB -------------------------------------------------------------


def jsonl_counts(folder: Path) -> dict[str, int]:
    """Stream file name -> number of records in it."""
    return {
        path.stem: len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(folder.glob("*.jsonl"))
    }


def test_jsonl_gets_the_demo_once_then_again_on_full_refresh(demo: Project) -> None:
    folder = demo.folder / "jsonl"
    demo.run("target-jsonl")
    assert jsonl_counts(folder) == DEMO_COUNTS
    first_line = (folder / "posts.jsonl").read_text().splitlines()[0]
    first_post = json.loads(first_line, parse_float=Decimal)
    assert first_post["post_id"] == demo_posts()[0]["Post ID"]  # leading zeros kept
    assert first_post["engagement_rate"] == Decimal(demo_posts()[0]["Engagement Rate"])

    assert demo.bookmarks("target-jsonl") == {
        POSTS_EXPORT: "2026-11-27T10:00:00+00:00",
        CAMPAIGNS_EXPORT: "2026-11-23T10:00:00+00:00",
        NEVER_RUN_EXPORT: None,
    }

    # No new export run: no CSV row again; the export list is listed in full each time.
    demo.run("target-jsonl")
    second = jsonl_counts(folder)
    assert {
        stream: second[stream] for stream in ("posts", "post_stats", "campaigns")
    } == {
        "posts": 40,
        "post_stats": 20,
        "campaigns": 10,
    }
    assert second["export_list_metadata"] == 8

    # target-jsonl appends: a full refresh writes everything of the current runs again.
    demo.run("target-jsonl", "--full-refresh")
    third = jsonl_counts(folder)
    assert {stream: third[stream] - second[stream] for stream in third} == DEMO_COUNTS


DUCKDB_COUNTS = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
tables = con.execute(
    "select table_name from information_schema.tables where table_schema = ?",
    [sys.argv[2]],
).fetchall()
print(json.dumps({
    t: con.execute(f'select count(*) from "{sys.argv[2]}"."{t}"').fetchone()[0]
    for (t,) in tables
}))
"""


def test_duckdb_gets_the_demo(demo: Project) -> None:
    demo.run("target-duckdb")
    done = subprocess.run(
        [
            str(LOADERS / "target-duckdb" / "venv" / "bin" / "python"),
            "-c",
            DUCKDB_COUNTS,
            str(demo.folder / "test.duckdb"),
            demo.schema,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == DEMO_COUNTS


# -- Meltano's view of the catalog -------------------------------------------------


def test_meltano_select_lists_the_csv_streams_and_columns(demo: Project) -> None:
    done = meltano(demo.env, "select", "tap-oktopost", "--list", "--all")
    listed = {
        name: status
        for status, name in re.findall(r"\[(\w+)\s*\]\s+(\S+)", done.stdout)
    }
    assert listed["posts.post_id"] == "selected"
    assert listed["posts.engagement_rate"] == "selected"
    assert listed["post_stats.impressions"] == "selected"
    assert listed["campaigns.campaign_id"] == "selected"
    for key in DEFAULT_KEY:
        assert listed[f"posts.{key}"] == "automatic"
    assert listed["export_list_metadata.Id"] == "automatic"
    assert not [name for name in listed if name.startswith("advocates.")]


# -- Stream maps on the CSV streams, through the tap's command line ------------------


def test_a_stream_map_drops_a_csv_column(demo: Project, tmp_path: Path) -> None:
    config = config_for(demo.stand_in, stream_maps={"posts": {"message": None}})
    run = run_tap(config, tmp_path)
    posts = run.records("posts")
    assert len(posts) == 40
    assert all("message" not in record for record in posts)
    assert all(record["post_id"] for record in posts)
    assert "message" not in run.schemas("posts")[0]["properties"]


def test_a_stream_map_filters_csv_rows(demo: Project, tmp_path: Path) -> None:
    config = config_for(
        demo.stand_in, stream_maps={"posts": {"__filter__": "clicks > 100"}}
    )
    run = run_tap(config, tmp_path)
    expected = sorted(
        row["Post ID"] for row in demo_posts() if int(row["Clicks"]) > 100
    )
    assert 0 < len(expected) < 40
    assert sorted(record["post_id"] for record in run.records("posts")) == expected
    assert len(run.records("campaigns")) == 10


def test_flattening_spreads_the_destination_object(
    demo: Project, tmp_path: Path
) -> None:
    config = config_for(demo.stand_in, flattening_enabled=True, flattening_max_depth=1)
    run = run_tap(config, tmp_path)
    listed = {r["Id"]: r for r in run.records("export_list_metadata")}
    assert listed[POSTS_EXPORT]["Destination__Email"] == "john.doe@acme.com"
    assert listed["032000000000103"]["Destination__Host"] == "sftp.acme.com"
    assert all("Destination" not in record for record in listed.values())
    assert not any("Password" in key for r in listed.values() for key in r)
    properties = run.schemas("export_list_metadata")[0]["properties"]
    assert "Destination__Email" in properties
    assert "Destination" not in properties
    assert len(run.records("posts")) == 40

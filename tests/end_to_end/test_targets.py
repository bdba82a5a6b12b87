"""Real loads through Meltano into PostgreSQL, JSONL files and DuckDB, read back.

The tests run `meltano run tap-oktopost <target>` in the `test` environment of
meltano.yml against a stand-in started in this process, then check what a user
would check in the destination. PostgreSQL is the throwaway server of
scripts/postgres.sh (`make test` starts it; the session fixture does too).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import random
import re
import shutil
import subprocess
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tap_oktopost.sync.ledger import read_bookmarks
from tap_oktopost.tables.column_types import column_type_of
from tap_oktopost.tables.column_typing import SAMPLE_ROWS
from tap_oktopost.tables.csv_data import DEFAULT_KEY, METADATA_PROPERTIES
from tap_oktopost.tables.names import column_names
from tests.conftest import (
    MELTANO_SYS_DIR,
    POSTGRES_PORT,
    batch_file_lines,
    config_for,
    csv_text,
    export_with,
    meltano,
    run_tap,
)
from tests.in_process.test_values import (
    NUMBER_COLUMNS,
    WIDE_TEXT,
    damage,
    number_rows,
    text_value,
    with_nul,
)
from tests.stand_ins.oktopost_stand_in import (
    OktopostStandIn,
    StandInExport,
    demo_exports,
    make_zip,
)

ROOT = Path(__file__).resolve().parents[2]
LOADERS = MELTANO_SYS_DIR / "loaders"
POSTGRES = {
    "host": "127.0.0.1",
    "port": POSTGRES_PORT,
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


@dataclass
class Project:
    """One test's pipelines: its own stand-in, state ids, schema and files."""

    env: dict[str, str]
    stand_in: OktopostStandIn
    suffix: str
    schema: str
    folder: Path

    def run(
        self, target: str, *options: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`meltano run tap-oktopost <target>` with this test's state id."""
        return meltano(
            self.env,
            "run",
            f"--state-id-suffix={self.suffix}",
            *options,
            "tap-oktopost",
            target,
            check=check,
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
        "TAP_OKTOPOST_ARCHIVE_CACHE_DIR": str(tmp_path / "archive-cache"),
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
        "_sdc_unfit_values": "jsonb",
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


def run_posts_again(stand_in: OktopostStandIn) -> None:
    """A new run of the posts export: 5 posts and 2 post stats rows."""
    new_posts = [["Post ID", "Clicks"], *[[f"{n:07d}", str(n)] for n in range(5)]]
    new_stats = [["Post ID", "Impressions"], ["0000001", "7"], ["0000002", "8"]]
    stand_in.set_run(
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


def test_postgres_adds_a_new_run_and_full_refresh_reloads(demo: Project) -> None:
    demo.run("target-postgres")

    run_posts_again(demo.stand_in)
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


MISTAKES = {
    "wrong api_key": (
        {"TAP_OKTOPOST_API_KEY": "not-the-key"},
        "HTTP 401, check the account_id and api_key settings",
    ),
    "wrong account_id": (
        {"TAP_OKTOPOST_ACCOUNT_ID": "another-account"},
        "HTTP 401, check the account_id and api_key settings",
    ),
    "closed port": (
        {
            "TAP_OKTOPOST_BASE_URL": "http://127.0.0.1:9/v2",
            "TAP_OKTOPOST_MAX_RETRIES": "0",
        },
        "could not reach http://127.0.0.1:9/v2; check the base_url setting",
    ),
    "base_url without /v2": (
        {"TAP_OKTOPOST_BASE_URL": "<base>"},
        "no such API path: check the base_url setting",
    ),
    "base_url not a URL": (
        {"TAP_OKTOPOST_BASE_URL": "api.oktopost.com/v2"},
        "Setting base_url fails the rule pattern",
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_setting_mistake_is_one_error_line_under_meltano_run(
    demo: Project, mistake: str
) -> None:
    """Meltano discovers before every sync: a mistake shows there, in one line."""
    env, said = MISTAKES[mistake]
    base = demo.stand_in.base_url.removesuffix("/v2")
    demo.env.update(
        {name: value.replace("<base>", base) for name, value in env.items()}
    )

    done = demo.run("target-jsonl", check=False)

    assert done.returncode != 0
    # Under Python 3.10 the SDK warns, in two lines, that the Python is past its end
    # of life: the SDK's notice about the machine, not the tap's about the mistake.
    lines = [
        line
        for line in done.stderr.splitlines()
        if "SingerSDKPythonEOLWarning" not in line and "warn_python_eol()" not in line
    ]
    tap_lines = [line for line in lines if " tap-oktopost " in line]
    errors = [line for line in tap_lines if "[error" in line]
    assert len(errors) == 1, tap_lines
    assert said in errors[0]
    assert len(tap_lines) <= 3, tap_lines
    assert not [line for line in lines if "Traceback" in line or "Warning" in line]


def loaded_by_export(schema: str, table: str) -> dict[str, set[str]]:
    """Export id -> the first column's values of its rows in a table."""
    found: dict[str, set[str]] = {}
    for export_id, value in sql(
        'select export_id, row_key from :"schema".:"table"', schema=schema, table=table
    ):
        found.setdefault(export_id, set()).add(value)
    return found


def test_postgres_gets_every_healthy_export_while_troubled_ones_keep_their_runs(
    project: Project,
) -> None:
    """`meltano run` into PostgreSQL with exports in several kinds of trouble among
    healthy ones: the healthy exports load whole and move their bookmarks, each
    troubled one is named in an ERROR line and keeps its bookmark, the run fails;
    once the trouble is gone, the next run loads each troubled export's run."""
    stand_in = project.stand_in
    files: dict[str, dict[str, list[list[str]]]] = {}
    for number, kind in enumerate(
        [
            "healthy",
            "healthy",
            "storage down",
            "unread at discovery",
            "damaged",
            "no key",
        ]
    ):
        export_id = f"03200000000{number + 1:04d}"
        files[export_id] = {
            "Leads.csv": [["Row Key", "Score"]]
            + [[f"{export_id}-lead-{n}", str(n)] for n in range(3 + number)],
            f"{kind.title().replace(' ', '')}.csv": [["Row Key"], [f"{export_id}-x"]],
        }
        if kind == "no key":
            files[export_id]["Leads.csv"] = [["Score"], ["1"], ["2"]]
        stand_in.add_export(
            export_with(
                export_id, {n: csv_text(r) for n, r in files[export_id].items()}
            )
        )
    healthy, down, unread, damaged, keyless = (
        "032000000000001", "032000000000003", "032000000000004",
        "032000000000005", "032000000000006",
    )  # fmt: skip
    good_archive = make_zip({n: csv_text(r) for n, r in files[damaged].items()})
    broken = bytearray(good_archive)
    broken[len(broken) // 3] ^= 0xFF
    stand_in.set_run(damaged, bytes(broken), "2026-11-27 10:00:00")
    stand_in.fail_next(f"/storage/{down}/", 503, times=10_000)
    stand_in.fail_next(f"/storage/{unread}/", 500)  # discovery's first read only
    project.env.update(
        {
            "TAP_OKTOPOST_MAX_RETRIES": "0",
            "TAP_OKTOPOST_PRIMARY_KEYS": json.dumps({"leads": ["row_key"]}),
        }
    )

    first = project.run("target-postgres", check=False)

    assert first.returncode != 0
    errors = [line for line in first.stderr.splitlines() if "[error" in line]
    for export_id in (down, unread, damaged, keyless):
        assert any(export_id in line for line in errors), (export_id, errors)
    leads = loaded_by_export(project.schema, "leads")
    for export_id in (healthy, "032000000000002"):
        assert leads[export_id] == {row[0] for row in files[export_id]["Leads.csv"][1:]}
    assert not {keyless, damaged, down} & set(leads)
    bookmarks = project.bookmarks("target-postgres")
    assert (
        bookmarks[healthy]
        == bookmarks["032000000000002"]
        == ("2026-11-27T10:00:00+00:00")
    )
    assert all(bookmarks.get(e) is None for e in (down, unread, damaged, keyless))

    # The trouble goes: storage answers, the archive is whole, the export's next run
    # has its key column.
    stand_in.stop_failing(f"/storage/{down}/")
    stand_in.set_run(damaged, good_archive, "2026-11-27 10:00:00")
    files[keyless]["Leads.csv"] = [["Row Key", "Score"], [f"{keyless}-lead-0", "1"]]
    stand_in.set_run(
        keyless,
        make_zip({n: csv_text(r) for n, r in files[keyless].items()}),
        "2026-11-28 10:00:00",
    )
    project.run("target-postgres")

    expected: dict[str, dict[str, set[str]]] = {}
    for export_id, tables in files.items():
        for name, rows in tables.items():
            by_table = expected.setdefault(name.removesuffix(".csv").lower(), {})
            by_table[export_id] = {row[0] for row in rows[1:]}
    for table, by_export in expected.items():
        assert loaded_by_export(project.schema, table) == by_export, table
    bookmarks = project.bookmarks("target-postgres")
    assert all(bookmarks[export_id] for export_id in files)
    assert bookmarks[keyless] == "2026-11-28T10:00:00+00:00"


BATCH_SETTINGS = {
    "gzip": ({"compression": "gzip"}, {}),
    "the README's": (
        {"compression": "none"},
        {
            "TARGET_POSTGRES_ADD_RECORD_METADATA": "false",
            "TARGET_POSTGRES_ACTIVATE_VERSION": "false",
        },
    ),
}
"""Batch file encodings and target settings: gzip files, and the README's setting."""


def batch_twin(project: Project, root: Path, settings: str = "gzip") -> Project:
    """A pipeline like the project's, sending BATCH files, into a schema of its own."""
    suffix = f"{project.suffix}b"
    schema = f"{project.schema}_batch"
    encoding, target_env = BATCH_SETTINGS[settings]
    batch_config = {
        "encoding": {"format": "jsonl", **encoding},
        "storage": {"root": root.as_uri()},
        "batch_size": 15,
    }
    env = {
        **project.env,
        **target_env,
        "TAP_OKTOPOST_BATCH_CONFIG": json.dumps(batch_config),
        "TARGET_POSTGRES_USE_COPY": "true",
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }
    return Project(env, project.stand_in, suffix, schema, project.folder)


LOADER_COLUMNS = {
    "_sdc_extracted_at",
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_sync_started_at",
    "_sdc_sequence",
    "_sdc_deleted_at",
    "_sdc_table_version",
}
"""target-postgres's own columns (`add_record_metadata`), null for a row from a file."""
LOAD_COLUMNS = {"sync_timestamp", *LOADER_COLUMNS}
"""When a row was extracted or loaded: different in every load."""


def loaded_differences(schema: str, expected_schema: str) -> list[tuple[Any, ...]]:
    """Each value of the CSV tables that differs between two schemas: (table, row,
    column, value, expected value); the load times aside."""
    differences: list[tuple[Any, ...]] = []
    for table in ("posts", "post_stats", "campaigns"):
        rows = table_rows(schema, table)
        expected = table_rows(expected_schema, table)
        assert len(rows) == len(expected), table
        for number, (row, expected_row) in enumerate(zip(rows, expected, strict=True)):
            differences += [
                (table, number, column, row.get(column), expected_row.get(column))
                for column in sorted((set(row) | set(expected_row)) - LOAD_COLUMNS)
                if row.get(column) != expected_row.get(column)
            ]
    return differences


def file_rows(root: Path) -> int:
    """The rows the BATCH files under a root hold, each file at most 15."""
    counts = [len(batch_file_lines(path)) for path in root.iterdir()]
    assert all(0 < count <= 15 for count in counts), counts
    return sum(counts)


@pytest.mark.parametrize("settings", sorted(BATCH_SETTINGS))
def test_postgres_loads_batch_files_as_it_loads_records(
    demo: Project, tmp_path: Path, settings: str
) -> None:
    root = tmp_path / "batches"
    batched = batch_twin(demo, root, settings)
    try:
        demo.run("target-postgres")
        batched.run("target-postgres")

        assert row_counts(batched.schema) == DEMO_COUNTS
        for table in ("posts", "post_stats", "campaigns"):
            loaded, expected = (
                {
                    column: kind
                    for column, kind in column_types(schema, table).items()
                    if column not in LOADER_COLUMNS or settings == "gzip"
                }
                for schema in (batched.schema, demo.schema)
            )
            assert loaded == expected
            loader_columns = LOADER_COLUMNS & set(column_types(batched.schema, table))
            assert loader_columns == (LOADER_COLUMNS if settings == "gzip" else set())
            assert primary_key(batched.schema, table) == primary_key(demo.schema, table)
        assert loaded_differences(batched.schema, demo.schema) == []
        assert batched.bookmarks("target-postgres") == demo.bookmarks("target-postgres")
        # target-postgres leaves the files it loaded; the next sync deletes them.
        assert file_rows(root) == 70  # 40 posts, 20 stats, 10 campaigns

        batched.run("target-postgres")
        assert row_counts(batched.schema) == DEMO_COUNTS
        assert list(root.iterdir()) == []

        run_posts_again(demo.stand_in)
        batched.run("target-postgres")
        demo.run("target-postgres")

        assert row_counts(batched.schema) == {
            **DEMO_COUNTS,
            "posts": 45,
            "post_stats": 22,
        }
        assert loaded_differences(batched.schema, demo.schema) == []
        assert batched.bookmarks("target-postgres")[POSTS_EXPORT] == (
            "2026-11-28T10:00:00+00:00"
        )
        assert file_rows(root) == 7  # the new run's posts and stats
    finally:
        sql('drop schema if exists :"schema" cascade', schema=batched.schema)


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


def test_postgres_keeps_a_column_type_from_run_to_run(project: Project) -> None:
    """State remembers each column's type: a run in which a column is empty, or a
    text column holds only whole numbers, changes nothing at the target."""
    header = ["Lead ID", "Empty Later", "Text First"]
    project.stand_in.add_export(
        StandInExport(
            id=LEADS_EXPORT,
            last_run_date="2026-11-01 10:00:00",
            archive=leads_run([header, ["0001", "3", "n/a"]]),
        )
    )
    project.run("target-postgres")
    project.stand_in.set_run(
        LEADS_EXPORT, leads_run([header, ["0002", "", "7"]]), "2026-11-02 10:00:00"
    )
    project.run("target-postgres")

    types = column_types(project.schema, "leads")
    assert (types["empty_later"], types["text_first"]) == ("bigint", "text")
    # target-postgres stores the JSON null of a row without unfit values as jsonb
    # null, not SQL NULL.
    assert sql(
        "select lead_id, empty_later, text_first, _sdc_unfit_values::text "
        'from :"schema".leads order by 1',
        schema=project.schema,
    ) == [["0001", "3", "n/a", "null"], ["0002", "", "7", "null"]]


def load_an_odd_value_later(
    project: Project, target: str, header: list[str]
) -> subprocess.CompletedProcess[str]:
    """Load leads whose second column is 3, then a run where it holds `n/a` and 4."""
    project.stand_in.add_export(
        StandInExport(
            id=LEADS_EXPORT,
            last_run_date="2026-11-01 10:00:00",
            archive=leads_run([header, ["0001", "3"]]),
        )
    )
    project.run(target)
    project.stand_in.set_run(
        LEADS_EXPORT,
        leads_run([header, ["0002", "n/a"], ["0003", "4"]]),
        "2026-11-02 10:00:00",
    )
    return project.run(target)


def test_postgres_widens_a_column_for_good_with_a_pin_and_one_alter(
    project: Project,
) -> None:
    """The README's cure for a column whose values changed kind: the run that brought
    the odd value loads it into `_sdc_unfit_values`; after a pin and one ALTER (and
    an UPDATE that takes the kept text back) every value is in the column."""
    header = ["Lead ID", "Value"]
    second = load_an_odd_value_later(project, "target-postgres", header)
    assert 'set column_types {"leads": {"value": "string"}}' in second.stderr
    query = (
        'select lead_id, value::text, _sdc_unfit_values::text from :"schema".leads '
        "order by 1"
    )
    assert sql(query, schema=project.schema) == [
        ["0001", "3", "null"],
        ["0002", "", '{"value": "n/a"}'],
        ["0003", "4", "null"],
    ]

    project.env["TAP_OKTOPOST_COLUMN_TYPES"] = json.dumps(
        {"leads": {"value": "string"}}
    )
    sql(
        'alter table :"schema".leads alter column value type text; '
        "update :\"schema\".leads set value = _sdc_unfit_values ->> 'value' "
        "where _sdc_unfit_values ? 'value'",
        schema=project.schema,
    )
    project.stand_in.set_run(
        LEADS_EXPORT,
        leads_run([header, ["0004", "pending"], ["0005", "5"]]),
        "2026-11-03 10:00:00",
    )
    third = project.run("target-postgres")

    assert "which does not fit its type" not in third.stderr
    assert column_types(project.schema, "leads")["value"] == "text"
    assert sql(query, schema=project.schema) == [
        ["0001", "3", "null"],
        ["0002", "n/a", '{"value": "n/a"}'],
        ["0003", "4", "null"],
        ["0004", "pending", "null"],
        ["0005", "5", "null"],
    ]


def test_postgres_honours_pins_and_keeps_what_does_not_fit_a_pin(
    project: Project,
) -> None:
    project.env["TAP_OKTOPOST_COLUMN_TYPES"] = json.dumps(
        {"leads": {"clicks": "integer", "code": "string"}}
    )
    rows = [["Lead ID", "Clicks", "Code"]]
    rows += [[f"L{n:05d}", str(n), str(n)] for n in range(SAMPLE_ROWS)]
    rows += [["L02000", "n/a", "7"], ["L02001", "12", "0012"]]
    project.stand_in.add_export(
        StandInExport(
            id=LEADS_EXPORT,
            last_run_date="2026-11-01 10:00:00",
            archive=leads_run(rows),
        )
    )
    done = project.run("target-postgres")

    types = column_types(project.schema, "leads")
    assert (types["clicks"], types["code"]) == ("bigint", "text")
    assert (
        "column clicks holds 'n/a', which does not fit its type, integer, as the "
        "column_types setting pins it"
    ) in done.stderr
    assert "as the column_types setting pins it" in done.stderr
    loaded = table_rows(project.schema, "leads")
    assert_rows_hold(loaded, rows, types, {SAMPLE_ROWS + 1: {"clicks": "n/a"}})


@pytest.mark.parametrize(
    ("first", "later", "column_type", "failure", "stored"),
    [
        pytest.param(
            "3", "n/a", "bigint", "Altering columns is not supported", "", id="to-text"
        ),
        pytest.param("3", "5.5", "bigint", None, "6", id="to-number"),
        pytest.param(
            "2026-11-01",
            "2026-11-02 10:30:00",
            "date",
            None,
            "2026-11-02",
            id="to-date-time",
        ),
    ],
)
def test_postgres_cannot_widen_a_column_so_widen_is_not_for_it(
    project: Project,
    first: str,
    later: str,
    column_type: str,
    failure: str | None,
    stored: str,
) -> None:
    """Why `keep` is the default: target-postgres 0.8.1 refuses to change a column
    to text, and keeps its type, rounding or cutting the value, when the tap widens
    it to number or date-time."""
    project.env["TAP_OKTOPOST_COLUMN_TYPING"] = "widen"
    header = ["Lead ID", "Value"]
    project.stand_in.add_export(
        StandInExport(
            id=LEADS_EXPORT,
            last_run_date="2026-11-01 10:00:00",
            archive=leads_run([header, ["0001", first]]),
        )
    )
    project.run("target-postgres")
    project.stand_in.set_run(
        LEADS_EXPORT, leads_run([header, ["0002", later]]), "2026-11-02 10:00:00"
    )
    second = project.run("target-postgres", check=False)

    assert column_types(project.schema, "leads")["value"] == column_type
    assert (second.returncode != 0) == bool(failure)
    assert (failure or "") in second.stderr
    loaded = sql(
        'select lead_id, value::text from :"schema".leads order by 1',
        schema=project.schema,
    )
    assert loaded[1:] == ([["0002", stored]] if stored else [])


# -- Column types that change within and across syncs, generated ----------------------

DRIFT_EXPORT = "032000000000301"
DRIFT_FILE = "Drift.csv"
PG_TYPES = {
    "integer": "bigint",
    "number": "numeric",
    "string": "text",
    "boolean": "boolean",
    "date": "date",
    "date-time": TIMESTAMP,
}
"""What target-postgres 0.8.1 makes of each type the tap sends."""

Cell = Callable[[random.Random], str]


def integer_cell(rng: random.Random) -> str:
    return str(rng.randint(-(10**6), 10**6))


def huge_integer_cell(rng: random.Random) -> str:
    """20 digits: past a signed 64-bit integer."""
    return str(rng.randint(10**19, 10**20 - 1))


def decimal_cell(rng: random.Random) -> str:
    return f"{rng.randint(-(10**6), 10**6)}.{rng.randint(0, 999):03d}"


def exponent_cell(rng: random.Random) -> str:
    """A number as text: its JSON number would be written otherwise."""
    return f"{rng.randint(1, 99)}.{rng.randint(1, 9)}E+{rng.randint(0, 3)}"


def date_cell(rng: random.Random) -> str:
    return (
        datetime.date(2026, 1, 1) + datetime.timedelta(rng.randrange(365))
    ).isoformat()


def date_time_cell(rng: random.Random) -> str:
    moment = datetime.datetime(2026, 1, 1) + datetime.timedelta(
        seconds=rng.randrange(365 * 86400)
    )
    shape = rng.choice(["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"])
    return moment.strftime(shape)


def boolean_cell(rng: random.Random) -> str:
    return rng.choice(["true", "false", "TRUE", "False"])


def word_cell(rng: random.Random) -> str:
    """Text that fits no other type, some of it number-like."""
    return rng.choice(["n/a", "pending", "12 clicks", "—", "0012", "1,000", "ok then"])


def either(*cells: Cell) -> Cell:
    return lambda rng: rng.choice(cells)(rng)


def fixed(text: str) -> Cell:
    return lambda rng: text


DRIFT_COLUMNS: dict[str, tuple[Cell, Cell, str]] = {
    # header: (cell up to the discovery sample's end, cell after it, type of the sync)
    "Int To Decimal": (integer_cell, either(decimal_cell, integer_cell), "number"),
    "Int To Text": (integer_cell, either(word_cell, integer_cell), "string"),
    "Date To Timestamp": (date_cell, either(date_time_cell, date_cell), "date-time"),
    "Bool To Text": (boolean_cell, either(word_cell, boolean_cell), "string"),
    "Int To Huge": (integer_cell, either(huge_integer_cell, integer_cell), "string"),
    "Huge Id": (huge_integer_cell, huge_integer_cell, "string"),
    "Exponent": (decimal_cell, either(exponent_cell, decimal_cell), "string"),
    "Clicks": (integer_cell, integer_cell, "integer"),
    "Rate": (decimal_cell, decimal_cell, "number"),
    "Day": (date_cell, date_cell, "date"),
    "Posted At": (date_time_cell, date_time_cell, "date-time"),
    "Boosted": (boolean_cell, boolean_cell, "boolean"),
}
DRIFT_TYPES = {
    "row_key": "string",
    **{
        name: column_type
        for name, (_, _, column_type) in zip(
            column_names(list(DRIFT_COLUMNS)), DRIFT_COLUMNS.values(), strict=True
        )
    },
}
FITS: dict[str, Cell] = {
    "integer": integer_cell,
    "number": either(decimal_cell, integer_cell, huge_integer_cell),
    "date": date_cell,
    "date-time": either(date_time_cell, date_cell),
    "boolean": boolean_cell,
    "string": either(word_cell, integer_cell, date_cell),
}
"""Values that fit each type."""
MISFITS: dict[str, Cell] = {
    "integer": either(word_cell, decimal_cell, huge_integer_cell, date_cell),
    "number": either(word_cell, date_cell, exponent_cell, fixed("1,5")),
    "date": either(date_time_cell, word_cell, fixed("2026-02-30"), fixed("02/11/2026")),
    "date-time": either(word_cell, fixed("2026-13-01 10:00:00")),
    "boolean": either(word_cell, integer_cell, fixed("yes")),
}
"""Values that do not fit each type (text fits anything)."""


def maybe_empty(rng: random.Random, cell: Cell) -> str:
    return "" if rng.random() < 0.05 else cell(rng)


def drift_rows(seed: int, count: int) -> list[list[str]]:
    """A first sync's CSV (header first) whose columns change kind after the
    discovery sample."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    rows = [["Row Key", *DRIFT_COLUMNS]]
    for number in range(1, count + 1):
        late = number > SAMPLE_ROWS
        rows.append(
            [
                f"K{number:05d}",
                *(
                    maybe_empty(rng, later if late else early)
                    for early, later, _ in DRIFT_COLUMNS.values()
                ),
            ]
        )
    return rows


def unfit_rows(
    seed: int, count: int
) -> tuple[list[list[str]], dict[int, dict[str, str]]]:
    """A later run's CSV (header first) in which about a third of the values do not
    fit the types of `drift_rows`; and row number -> column -> the text of those."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    rows = [["Row Key", *DRIFT_COLUMNS]]
    unfit: dict[int, dict[str, str]] = {}
    for number in range(1, count + 1):
        row = [f"L{number:05d}"]
        for name in column_names(list(DRIFT_COLUMNS)):
            column_type = DRIFT_TYPES[name]
            if column_type in MISFITS and rng.random() < 0.3:
                row.append(MISFITS[column_type](rng))
                unfit.setdefault(number, {})[name] = row[-1]
            else:
                row.append(maybe_empty(rng, FITS[column_type]))
        rows.append(row)
    return rows, unfit


def value_of(pg_type: str, value: Any) -> Any:
    """A CSV cell or a value read back, as a value of a PostgreSQL type."""
    if pg_type == "bigint":
        return int(value)
    if pg_type == "numeric":
        return Decimal(str(value))
    if pg_type == "boolean":
        return (
            value
            if isinstance(value, bool)
            else {"true": True, "false": False}[value.lower()]
        )
    if pg_type == "date":
        return datetime.date.fromisoformat(value)
    if pg_type == TIMESTAMP:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return moment
    assert pg_type == "text", pg_type
    return value


def table_rows(schema: str, table: str) -> list[dict[str, Any]]:
    """A table's rows in load and file order, as PostgreSQL's JSON gives them."""
    rows = sql(
        'select to_jsonb(t)::text from :"schema".:"table" t '
        "order by _sdc_export_run_at, _sdc_row_number",
        schema=schema,
        table=table,
    )
    return [json.loads(text, parse_float=Decimal) for (text,) in rows]


def assert_rows_hold(
    loaded: list[dict[str, Any]],
    rows: list[list[str]],
    pg_types: dict[str, str],
    unfit: dict[int, dict[str, str]] | None = None,
) -> None:
    """Loaded rows hold a CSV's rows (header first) value for value: each cell as a
    value of its column's type, an empty cell NULL, and the cells in `unfit` (row
    number -> column -> text) NULL with their text in `_sdc_unfit_values`."""
    names = column_names(rows[0])
    assert [row["_sdc_row_number"] for row in loaded] == list(range(1, len(rows)))
    for number, (row, cells) in enumerate(zip(loaded, rows[1:], strict=True), start=1):
        kept = (unfit or {}).get(number, {})
        assert row["_sdc_unfit_values"] == (kept or None), number
        for name, text in zip(names, cells, strict=True):
            if not text or name in kept:
                assert row[name] is None, (number, name, text)
            else:
                expected = value_of(pg_types[name], text)
                got = value_of(pg_types[name], row[name])
                assert got == expected, (number, name, text, row[name])


def add_drift_export(project: Project, rows: list[list[str]], run_date: str) -> None:
    project.stand_in.add_export(
        StandInExport(
            id=DRIFT_EXPORT,
            last_run_date=run_date,
            archive=make_zip({DRIFT_FILE: csv_text(rows)}),
        )
    )


def first_schema_types(project: Project, tmp_path: Path) -> dict[str, str]:
    """Column -> type, as the tap's first SCHEMA of a sync of `drift` says."""
    run = run_tap(config_for(project.stand_in), tmp_path)
    schemas = run.schemas("drift")
    assert all(schema == schemas[0] for schema in schemas)  # one type per sync
    return {
        name: column_type_of(column).value
        for name, column in schemas[0]["properties"].items()
        if name not in METADATA_PROPERTIES
    }


def test_postgres_loads_a_first_sync_whose_columns_change_kind_late(
    project: Project, tmp_path: Path
) -> None:
    rows = drift_rows(seed=9, count=SAMPLE_ROWS + 400)
    add_drift_export(project, rows, "2026-11-01 10:00:00")
    said = first_schema_types(project, tmp_path)
    assert said == DRIFT_TYPES

    project.run("target-postgres")

    types = column_types(project.schema, "drift")
    assert {name: types[name] for name in said} == {
        name: PG_TYPES[column_type] for name, column_type in said.items()
    }
    assert_rows_hold(table_rows(project.schema, "drift"), rows, types)


def test_postgres_keeps_column_types_when_a_later_run_does_not_fit(
    project: Project,
) -> None:
    first_rows = drift_rows(seed=10, count=SAMPLE_ROWS + 100)
    add_drift_export(project, first_rows, "2026-11-01 10:00:00")
    project.run("target-postgres")
    first_types = column_types(project.schema, "drift")
    assert first_types["_sdc_unfit_values"] == "jsonb"

    later_rows, unfit = unfit_rows(seed=11, count=300)
    project.stand_in.set_run(
        DRIFT_EXPORT,
        make_zip({DRIFT_FILE: csv_text(later_rows)}),
        "2026-11-02 10:00:00",
    )
    second = project.run("target-postgres")

    assert column_types(project.schema, "drift") == first_types
    loaded = table_rows(project.schema, "drift")
    assert_rows_hold(loaded[: len(first_rows) - 1], first_rows, first_types)
    assert_rows_hold(loaded[len(first_rows) - 1 :], later_rows, first_types, unfit)
    for name in {name for kept in unfit.values() for name in kept}:
        first_row = min(number for number, kept in unfit.items() if name in kept)
        assert (
            f"Stream drift, file {DRIFT_FILE}, row {first_row}: column {name} holds"
            in second.stderr
        )
        assert f'set column_types {{"drift": {{"{name}": "string"}}}}' in second.stderr


def test_postgres_loads_every_csv_column_as_text_with_the_text_setting(
    project: Project,
) -> None:
    project.env["TAP_OKTOPOST_COLUMN_TYPING"] = "text"
    rows = drift_rows(seed=12, count=SAMPLE_ROWS + 100)
    add_drift_export(project, rows, "2026-11-01 10:00:00")
    project.run("target-postgres")

    types = column_types(project.schema, "drift")
    names = column_names(rows[0])
    assert {types[name] for name in names} == {"text"}
    assert types["_sdc_row_number"] == "bigint"  # the tap's own columns keep theirs
    assert_rows_hold(table_rows(project.schema, "drift"), rows, types)


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


def test_jsonl_gets_unfit_values_as_an_object(project: Project) -> None:
    header = ["Lead ID", "Clicks"]
    load_an_odd_value_later(project, "target-jsonl", header)

    lines = (project.folder / "jsonl" / "leads.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["lead_id"], r["clicks"], r["_sdc_unfit_values"]) for r in records] == [
        ("0001", 3, None),
        ("0002", None, {"clicks": "n/a"}),
        ("0003", 4, None),
    ]


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
    assert in_duckdb(demo, DUCKDB_COUNTS) == DEMO_COUNTS


DUCKDB_ROWS = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute(f"set schema = '{sys.argv[2]}'")
cursor = con.execute(sys.argv[3])
names = [column[0] for column in cursor.description]
print(json.dumps([dict(zip(names, row)) for row in cursor.fetchall()], default=str))
"""


def in_duckdb(project: Project, script: str, *args: str) -> Any:
    """What a script printed as JSON, run on the test's DuckDB file and schema.

    It runs in target-duckdb's own venv, which has the duckdb module.
    """
    done = subprocess.run(
        [
            str(LOADERS / "target-duckdb" / "venv" / "bin" / "python"),
            "-c",
            script,
            str(project.folder / "test.duckdb"),
            project.schema,
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def duckdb_rows(project: Project, query: str) -> list[dict[str, Any]]:
    """Rows of a query in the test's DuckDB schema; values JSON can't hold are text."""
    rows: list[dict[str, Any]] = in_duckdb(project, DUCKDB_ROWS, query)
    return rows


def test_duckdb_widens_a_column_in_the_next_sync_with_the_widen_setting(
    project: Project,
) -> None:
    """target-duckdb changes a column's type by renaming the old column to
    `<name>_<yyyymmdd_hhmm>` and adding a new one: earlier runs' values stay in
    the old column, later runs' go to the new one."""
    project.env["TAP_OKTOPOST_COLUMN_TYPING"] = "widen"
    rng = random.Random(13)  # noqa: S311 - test data, not secrets
    header = ["Lead ID", "Clicks", "Score", "Day"]
    first = [header]
    first += [
        [f"A{n:04d}", integer_cell(rng), integer_cell(rng), date_cell(rng)]
        for n in range(1, 51)
    ]
    later_cells = (
        either(word_cell, integer_cell),
        either(decimal_cell, integer_cell),
        either(date_time_cell, date_cell),
    )
    later = [header]
    later += [[f"B{n:04d}", *(cell(rng) for cell in later_cells)] for n in range(1, 51)]
    project.stand_in.add_export(
        StandInExport(
            id=LEADS_EXPORT,
            last_run_date="2026-11-01 10:00:00",
            archive=leads_run(first),
        )
    )
    project.run("target-duckdb")
    project.stand_in.set_run(LEADS_EXPORT, leads_run(later), "2026-11-02 10:00:00")
    project.run("target-duckdb")

    types = {
        row["column_name"]: row["data_type"]
        for row in duckdb_rows(
            project,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = current_schema() and table_name = 'leads'",
        )
    }
    versioned = {
        name.rsplit("_", 2)[0]: name
        for name in types
        if re.fullmatch(r"(clicks|score|day)_[0-9]{8}_[0-9]{4}", name)
    }
    assert {name: types[name] for name in ("clicks", "score", "day")} == {
        "clicks": "VARCHAR",
        "score": "DOUBLE",
        "day": "TIMESTAMP",
    }
    assert {name: types[column] for name, column in versioned.items()} == {
        "clicks": "HUGEINT",
        "score": "HUGEINT",
        "day": "VARCHAR",  # target-duckdb makes text of a date
    }
    loaded = duckdb_rows(
        project,
        "select * from leads order by _sdc_export_run_at, _sdc_row_number",
    )
    assert [row["lead_id"] for row in loaded] == [
        row[0] for row in (*first[1:], *later[1:])
    ]
    for row, (_, clicks, score, day) in zip(loaded, first[1:], strict=False):
        assert (row["clicks"], row["score"], row["day"]) == (None, None, None)
        assert (
            row[versioned["clicks"]],
            row[versioned["score"]],
            row[versioned["day"]],
        ) == (int(clicks), int(score), day)
    for row, (_, clicks, score, day) in zip(loaded[50:], later[1:], strict=True):
        assert (
            row[versioned["clicks"]],
            row[versioned["score"]],
            row[versioned["day"]],
        ) == (None, None, None)
        assert row["clicks"] == clicks
        assert row["score"] == float(score)
        assert value_of(TIMESTAMP, row["day"]) == value_of(TIMESTAMP, day)
        assert row["_sdc_unfit_values"] is None


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


# -- Numbers keep their text (issue 19) ------------------------------------------------

NUMBER_SEEDS = range(3)


def add_number_exports(stand_in: OktopostStandIn) -> dict[str, list[list[str]]]:
    """An export per seed, each a CSV of `number_rows`; table name -> its rows."""
    tables = {}
    for seed in NUMBER_SEEDS:
        stand_in.add_export(
            export_with(
                f"03200000000041{seed}",
                {f"Numbers{seed}.csv": csv_text(number_rows(seed))},
            )
        )
        tables[f"numbers{seed}"] = number_rows(seed)
    return tables


def test_postgres_holds_each_number_as_written(project: Project) -> None:
    """numeric keeps a number's digits, trailing zeros included: read back as text,
    each value is the CSV's text; what a float would round arrives as text."""
    tables = add_number_exports(project.stand_in)
    project.run("target-postgres")

    names = [name for name, _ in NUMBER_COLUMNS.values()]
    for table, rows in tables.items():
        types = column_types(project.schema, table)
        assert {name: types[name] for name in names} == {
            name: PG_TYPES[column_type] for name, column_type in NUMBER_COLUMNS.values()
        }
        loaded = sql(
            f"select {', '.join(f'{name}::text' for name in names)} "  # noqa: S608
            'from :"schema".:"table" order by _sdc_row_number',
            schema=project.schema,
            table=table,
        )
        assert loaded == rows[1:], table


def awkward_files(seed: int) -> dict[str, tuple[bytes, list[list[str]]]]:
    """Files of issue 19's classes: member -> (bytes, the rows it holds as text).

    NUL in a UTF-16 file, a damaged UTF-8 file, a cp1252 file, a `;` file with
    decimal commas, a file with its header repeated, and an Excel owner file."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    files: dict[str, tuple[bytes, list[list[str]]]] = {}
    rows = [[f"N{n}", text_value(rng, WIDE_TEXT)] for n in range(1, 30)]
    lines = ["Key,Name"] + [f"{key},{with_nul(rng, name)}" for key, name in rows]
    files["Nul.csv"] = ("\r\n".join(lines).encode("utf-16"), rows)
    rows, data = [], [b"Key,Name"]
    for n in range(1, 60):
        name = text_value(rng, WIDE_TEXT)
        if n % 20 == 7:
            damaged, name = damage(rng, name)
            data.append(f"D{n},".encode() + damaged)
        else:
            data.append(f"D{n},{name}".encode())
        rows.append([f"D{n}", name])
    files["Damaged.csv"] = (b"\r\n".join(data), rows)
    rows = [[f"L{n}", text_value(rng) + "é"] for n in range(1, 40)]
    files["Legacy.csv"] = (csv_text([["Key", "Name"], *rows]).encode("cp1252"), rows)
    rows = [
        [f"S{n}", f"{rng.randint(0, 999)},{rng.randint(0, 99):02d}"] for n in range(30)
    ]
    semicolon = "Key;Amount\r\n" + "".join(";".join(row) + "\r\n" for row in rows)
    files["Semicolon.csv"] = (semicolon.encode(), rows)

    rows = [[f"J{n}", str(n)] for n in range(40)]
    joined = [["Key", "Count"], *rows[:15], ["Key", "Count"], *rows[15:]]
    files["Joined.csv"] = (csv_text(joined).encode(), rows)
    return files


def test_postgres_holds_every_awkward_files_values_as_written(
    project: Project,
) -> None:
    """Through `meltano run`: NUL never reaches PostgreSQL (it would refuse the
    load), damaged UTF-8 keeps its other characters, cp1252 and `;` files read right,
    a repeated header is no row, an owner file is no table or column."""
    expected: dict[str, list[list[str]]] = {}
    for seed in NUMBER_SEEDS:
        files = awkward_files(seed)
        members: dict[str, str | bytes] = {n: data for n, (data, _) in files.items()}
        members["~$Joined.csv"] = random.Random(seed).randbytes(162)  # noqa: S311
        export_id = f"03200000000042{seed}"
        project.stand_in.add_export(export_with(export_id, members))
        for member, (_, rows) in files.items():
            kept = expected.setdefault(member.removesuffix(".csv").lower(), [])
            kept += [[export_id, *row] for row in rows]
    project.run("target-postgres")

    for table, rows in expected.items():
        columns = [
            name
            for name in column_types(project.schema, table)
            if name not in METADATA_PROPERTIES and not name.startswith("_sdc")
        ]
        assert len(columns) == 2, (table, columns)
        loaded = sql(
            f"select export_id, {', '.join(f'{c}::text' for c in columns)} "  # noqa: S608
            'from :"schema".:"table" order by export_id, _sdc_row_number',
            schema=project.schema,
            table=table,
        )
        assert loaded == rows, table

"""`meltano run tap-oktopost target-snowflake` into an emulated Snowflake, read back.

The loader is the unmodified MeltanoLabs target-snowflake that Meltano installs from
meltano.yml. In the `test` environment it runs against fakesnow plus the emulation layer
of tests/stand_ins/snowflake (user stage, staged reads, Snowflake's refusal of column
type changes), in a database kept in each test's folder. The tests read the tables back
with Snowflake SQL through fakesnow, as a user would query them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import subprocess
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import fakesnow
import pytest
import snowflake.connector as snowflake_connector
from fakesnow.transforms.stage import LOCAL_BUCKET_PATH
from snowflake.connector.cursor import SnowflakeCursor
from snowflake.connector.errors import ProgrammingError

from tap_oktopost.tables.names import SNOWFLAKE_RESERVED, name_of
from tests.conftest import MELTANO, building_from_checkout, meltano, meltano_env
from tests.end_to_end.test_targets import (
    CAMPAIGNS_EXPORT,
    DEMO_COUNTS,
    LEADS_EXPORT,
    NEVER_RUN_EXPORT,
    POSTS_EXPORT,
    ROOT,
    Project,
    add_number_exports,
    leads_run,
    run_posts_again,
)
from tests.in_process.test_column_names import warehouse_export, warehouse_files
from tests.in_process.test_values import NUMBER_COLUMNS
from tests.stand_ins.oktopost_stand_in import (
    OktopostStandIn,
    StandInExport,
    demo_exports,
)
from tests.stand_ins.snowflake.snowflake_emulation import (
    SNOWFLAKE_RESERVED as REFUSED_UNQUOTED,
)
from tests.stand_ins.snowflake.snowflake_emulation import (
    allowed_type_change,
    canonical_type,
    refuse_reserved_names,
)

TARGET = "target-snowflake"
DATABASE, SCHEMA = "RAW", "OKTOPOST"  # meltano.yml's `test` environment
VARCHAR, NUMBER, TIMESTAMP = "VARCHAR(16777216)", "NUMBER(38,0)", "TIMESTAMP_NTZ(9)"
TAP_COLUMNS = {
    "EXPORT_ID": VARCHAR,
    "SYNC_TIMESTAMP": TIMESTAMP,
    "_SDC_SOURCE_FILE": VARCHAR,
    "_SDC_ROW_NUMBER": NUMBER,
    "_SDC_EXPORT_RUN_AT": TIMESTAMP,
    "_SDC_EXTRA": "VARIANT",
    "_SDC_UNFIT_VALUES": "VARIANT",
}
LOADER_COLUMNS = {  # target-snowflake's own, from add_record_metadata
    "_SDC_EXTRACTED_AT": TIMESTAMP,
    "_SDC_RECEIVED_AT": TIMESTAMP,
    "_SDC_BATCHED_AT": TIMESTAMP,
    "_SDC_DELETED_AT": TIMESTAMP,
    "_SDC_SEQUENCE": NUMBER,
    "_SDC_TABLE_VERSION": NUMBER,
    "_SDC_SYNC_STARTED_AT": NUMBER,
}
CSV_KEY = {"EXPORT_ID", "_SDC_EXPORT_RUN_AT", "_SDC_SOURCE_FILE", "_SDC_ROW_NUMBER"}


# CSV header cell -> (column, type) for the demo's tables; the types as `desc table`
# shows them: integer NUMBER(38,0), number FLOAT, date-time TIMESTAMP_NTZ(9).
POSTS = {
    "Post ID": ("POST_ID", VARCHAR),
    "Network": ("NETWORK", VARCHAR),
    "Message": ("MESSAGE", VARCHAR),
    "Clicks": ("CLICKS", NUMBER),
    "Engagement Rate": ("ENGAGEMENT_RATE", "FLOAT"),
    "Is Boosted": ("IS_BOOSTED", "BOOLEAN"),
    "Created At": ("CREATED_AT", TIMESTAMP),
    "Campaign": ("CAMPAIGN", VARCHAR),
}
POST_STATS = {
    "Post ID": ("POST_ID", VARCHAR),
    "Date": ("DATE", "DATE"),
    "Impressions": ("IMPRESSIONS", NUMBER),
    "Likes": ("LIKES", NUMBER),
    "Shares": ("SHARES", NUMBER),
    "Comments": ("COMMENTS", NUMBER),
}
CAMPAIGNS = {
    "Campaign ID": ("CAMPAIGN_ID", VARCHAR),
    "Name": ("NAME", VARCHAR),
    "Start Date": ("START_DATE", "DATE"),
    "Posts": ("POSTS", NUMBER),
    "Clicks": ("CLICKS", NUMBER),
    "Status": ("STATUS", VARCHAR),
}
POSTS_RUN, CAMPAIGNS_RUN = datetime(2026, 11, 27, 10), datetime(2026, 11, 23, 10)
DEMO_TABLES = {  # table -> (export, run, CSV member, columns)
    "POSTS": (POSTS_EXPORT, POSTS_RUN, "2026-11-27-Posts.csv", POSTS),
    "POST_STATS": (POSTS_EXPORT, POSTS_RUN, "reports/Post Stats.csv", POST_STATS),
    "CAMPAIGNS": (CAMPAIGNS_EXPORT, CAMPAIGNS_RUN, "Campaigns.csv", CAMPAIGNS),
}
SNOWFLAKE_COUNTS = {table.upper(): count for table, count in DEMO_COUNTS.items()}

# -- The emulated database -------------------------------------------------------------


@dataclass
class Snowflake:
    """The project's emulated database, read with Snowflake SQL as a user would."""

    cursor: SnowflakeCursor

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        self.cursor.execute(statement)
        return [tuple(row) for row in self.cursor.fetchall()]

    def row_counts(self) -> dict[str, int]:
        """Every table of the schema and its number of rows."""
        return {
            table: self.query(f'select count(*) from "{table}"')[0][0]  # noqa: S608
            for _, table, *_ in self.query("show tables")
        }

    def column_types(self, table: str) -> dict[str, str]:
        """Column name -> type, as `desc table` shows them."""
        return {row[0]: row[1] for row in self.query(f'desc table "{table}"')}

    def primary_key(self, table: str) -> set[str]:
        return {row[4] for row in self.query(f'show primary keys in table "{table}"')}

    def csv_rows(
        self, table: str, columns: dict[str, tuple[str, str]]
    ) -> list[tuple[Any, ...]]:
        """A CSV table's rows: key columns, then the CSV's columns."""
        names = ", ".join(f'"{column}"' for column, _ in columns.values())
        return self.query(
            "select EXPORT_ID, _SDC_EXPORT_RUN_AT, _SDC_SOURCE_FILE, _SDC_ROW_NUMBER, "  # noqa: S608
            f'{names} from "{table}" order by _SDC_ROW_NUMBER'
        )


@contextlib.contextmanager
def snowflake(project: Project) -> Iterator[Snowflake]:
    """Open the project's emulated database; it must be closed before the next run."""
    with warnings.catch_warnings():
        # duckdb's note on how fakesnow fetches results, not a problem of the data
        warnings.filterwarnings(
            "ignore", "Arrow output on a DB-API result", category=UserWarning
        )
        with (
            fakesnow.patch(db_path=project.folder),
            snowflake_connector.connect(database=DATABASE, schema=SCHEMA) as conn,
        ):
            yield Snowflake(conn.cursor())


def staged_files(project: Project) -> list[Path]:
    """What the loads left in the user stage `@~`."""
    return [path for path in project.folder.rglob("user_stage/**/*") if path.is_file()]


# -- Meltano ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def snowflake_base_env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """Install the tap and the loader once per session (no PostgreSQL needed)."""
    env = meltano_env(tmp_path_factory.mktemp("meltano") / "meltano.db")
    with building_from_checkout():
        meltano(env, "install", "tap-oktopost", TARGET)
    yield env
    # fakesnow makes this folder on import, for its own stages, which stay unused
    shutil.rmtree(LOCAL_BUCKET_PATH, ignore_errors=True)


@pytest.fixture
def project(
    snowflake_base_env: dict[str, str], stand_in: OktopostStandIn, tmp_path: Path
) -> Project:
    """Meltano pointed at this test's stand-in, loading into its own database."""
    database = tmp_path / "snowflake"
    env = {
        **snowflake_base_env,
        "TAP_OKTOPOST_BASE_URL": stand_in.base_url,
        "TAP_OKTOPOST_ACCOUNT_ID": stand_in.account_id,
        "TAP_OKTOPOST_API_KEY": stand_in.api_key,
        "SNOWFLAKE_EMULATOR_DB_PATH": str(database),
    }
    return Project(env, stand_in, uuid.uuid4().hex[:12], SCHEMA, database)


@pytest.fixture
def demo(project: Project) -> Project:
    for export in demo_exports():
        project.stand_in.add_export(export)
    return project


def failed_run(project: Project, *options: str) -> str:
    """Run `meltano run` expecting it to fail; what it printed on stderr."""
    done = subprocess.run(
        [
            str(MELTANO),
            "--environment=test",
            "run",
            f"--state-id-suffix={project.suffix}",
            *options,
            "tap-oktopost",
            TARGET,
        ],
        cwd=ROOT,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode != 0, "the run was expected to fail"
    return done.stderr


# -- What the CSV files hold -----------------------------------------------------------


def csv_rows(export_id: str, member: str) -> list[dict[str, str]]:
    """The rows of a demo CSV, as the file holds them."""
    export = next(export for export in demo_exports() if export.id == export_id)
    assert export.archive is not None
    with zipfile.ZipFile(io.BytesIO(export.archive)) as zipped:
        text = zipped.read(member).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def typed(text: str, sql_type: str) -> object:
    """The value a CSV cell should have in a column of this type (empty: null)."""
    if text == "":
        return None
    parsers: dict[str, Callable[[str], object]] = {
        NUMBER: int,
        "FLOAT": float,
        "BOOLEAN": {"true": True, "false": False}.__getitem__,
        "DATE": date.fromisoformat,
        TIMESTAMP: datetime.fromisoformat,
    }
    return parsers.get(sql_type, str)(text)


# -- The demo, run after run -----------------------------------------------------------


def batch_config(root: Path) -> dict[str, Any]:
    """The tap's batch_config: gzipped JSON lines, 15 rows a file (several a table)."""
    return {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": root.as_uri()},
        "batch_size": 15,
    }


@pytest.mark.parametrize("sent_as", ["records", "batch"])
def test_snowflake_holds_each_csv_row_once_run_after_run(
    demo: Project, tmp_path: Path, sent_as: str
) -> None:
    """With the tap's batch_config on, target-snowflake PUTs the tap's files to its
    stage and MERGEs them: the same tables, types and values as from RECORDs, and
    each file deleted once loaded (clean_up_batch_files). The loader adds its own
    _SDC_* times to RECORDs only: from files they stay null."""
    batch_root = tmp_path / "batches"
    batched = sent_as == "batch"
    if batched:
        demo.env["TAP_OKTOPOST_BATCH_CONFIG"] = json.dumps(batch_config(batch_root))

    def run(*options: str) -> None:
        demo.run(TARGET, *options)
        assert staged_files(demo) == []  # every file REMOVEd from the stage
        # The tap made the root for its files; the loader deleted each one.
        assert batch_root.is_dir() is batched
        assert not batched or list(batch_root.iterdir()) == []

    run()
    with snowflake(demo) as db:
        assert db.row_counts() == SNOWFLAKE_COUNTS
        for table, (export_id, run_at, member, columns) in DEMO_TABLES.items():
            csv_types = dict(columns.values())
            assert db.column_types(table) == TAP_COLUMNS | csv_types | LOADER_COLUMNS
            assert db.primary_key(table) == CSV_KEY
            expected = [
                (
                    export_id,
                    run_at,
                    member,
                    number,
                    *(typed(row[cell], kind) for cell, (_, kind) in columns.items()),
                )
                for number, row in enumerate(csv_rows(export_id, member), start=1)
            ]
            assert db.csv_rows(table, columns) == expected
        messages = {message for (message,) in db.query("select MESSAGE from POSTS")}
        assert 'Our CEO says: "Automation wins"' in messages
        assert "Line one of the post\nLine two, after a newline" in messages
        assert "Café talk: Grüße from the Berlin team" in messages

        # The metadata streams: keyed on ID, dates typed, no credential anywhere.
        for table in ("EXPORT_LIST_METADATA", "ACTIVE_EXPORT_METADATA"):
            assert db.primary_key(table) == {"ID"}
        active_types = db.column_types("ACTIVE_EXPORT_METADATA")
        assert active_types["LASTRUNDATE"] == TIMESTAMP
        assert active_types["DESTINATION"] == "VARIANT"
        assert db.query(
            "select ID, LASTRUNDATE, LASTRUNFILE from ACTIVE_EXPORT_METADATA order by 1"
        ) == [
            (POSTS_EXPORT, POSTS_RUN, "2026-11-27-Posts-Report.zip"),
            (CAMPAIGNS_EXPORT, CAMPAIGNS_RUN, "2026-11-23-Campaigns-Report.zip"),
            (NEVER_RUN_EXPORT, None, None),
        ]
        destinations = [
            text
            for (text,) in db.query(
                "select DESTINATION from EXPORT_LIST_METADATA order by ID"
            )
        ]
        assert json.loads(destinations[2])["Host"] == "sftp.acme.com"
        assert not any(
            "Pa55word" in text or "Password" in text for text in destinations
        )
        assert db.query("select count(_SDC_BATCHED_AT) from POSTS") == [
            (0 if batched else 40,)
        ]
        first_load = db.query(
            "select max(SYNC_TIMESTAMP), max(_SDC_BATCHED_AT) from POSTS"
        )
    assert demo.bookmarks(TARGET) == {
        POSTS_EXPORT: "2026-11-27T10:00:00+00:00",
        CAMPAIGNS_EXPORT: "2026-11-23T10:00:00+00:00",
        NEVER_RUN_EXPORT: None,
    }

    # No new export run: Meltano's state sends no CSV row again.
    run()
    with snowflake(demo) as db:
        assert db.row_counts() == SNOWFLAKE_COUNTS
        assert (
            db.query("select max(SYNC_TIMESTAMP), max(_SDC_BATCHED_AT) from POSTS")
            == first_load
        )

    # A new run of the posts export: exactly its rows are added.
    run_posts_again(demo.stand_in)
    run()
    after_new_run = SNOWFLAKE_COUNTS | {"POSTS": 45, "POST_STATS": 22}
    with snowflake(demo) as db:
        assert db.row_counts() == after_new_run
        assert db.query(
            "select _SDC_EXPORT_RUN_AT, count(*) from POSTS group by 1 order by 1"
        ) == [(POSTS_RUN, 40), (datetime(2026, 11, 28, 10), 5)]
        assert db.query(
            "select POST_ID, CLICKS, NETWORK from POSTS "
            "where _SDC_EXPORT_RUN_AT = '2026-11-28 10:00:00' order by 1"
        ) == [(f"{n:07d}", n, None) for n in range(5)]
        [(second_sync,)] = db.query("select max(SYNC_TIMESTAMP) from POSTS")
    assert demo.bookmarks(TARGET)[POSTS_EXPORT] == "2026-11-28T10:00:00+00:00"

    # A full refresh delivers each export's current run again: the key upserts it.
    run("--full-refresh")
    with snowflake(demo) as db:
        assert db.row_counts() == after_new_run
        refreshed = {
            table: db.query(
                f"select count(*) from {table} "  # noqa: S608
                f"where SYNC_TIMESTAMP > '{second_sync.isoformat(sep=' ')}'"
            )[0][0]
            for table in DEMO_TABLES
        }
    assert refreshed == {"POSTS": 5, "POST_STATS": 2, "CAMPAIGNS": 10}


# -- Values that change kind -----------------------------------------------------------


LEADS_HEADER = ["Lead ID", "Clicks", "Signed Up", "Score"]
LEADS_TYPES = {
    "LEAD_ID": VARCHAR,
    "CLICKS": NUMBER,
    "SIGNED_UP": "DATE",
    "SCORE": "FLOAT",
}


def leads(project: Project) -> tuple[dict[str, str], list[tuple[Any, ...]]]:
    """The LEADS table: its CSV columns' types, and its rows with those columns and
    _SDC_UNFIT_VALUES as a dict."""
    with snowflake(project) as db:
        types = db.column_types("LEADS")
        rows = db.query(
            "select LEAD_ID, CLICKS, SIGNED_UP, SCORE, _SDC_UNFIT_VALUES "
            "from LEADS order by 1"
        )
    return (
        {column: types[column] for column in LEADS_TYPES},
        [(*row[:4], json.loads(row[4]) if row[4] else None) for row in rows],
    )


def test_snowflake_takes_values_that_do_not_fit_and_refuses_type_changes(
    project: Project,
) -> None:
    """With column_typing keep (the default) a column keeps its first type: a later
    value that does not fit is null there and travels as text in _SDC_UNFIT_VALUES.
    A type change (widen, or a full refresh forgetting the kept type) makes the
    loader alter NUMBER(38,0) to VARCHAR, which Snowflake refuses (error 002108);
    a column_types pin gets past it. The first load is append-only: COPY, not MERGE."""
    first = [LEADS_HEADER, ["0001", "3", "2026-11-01", "1.5"], ["0002", "4", "", "2"]]
    project.stand_in.add_export(
        StandInExport(
            id=LEADS_EXPORT,
            last_run_date="2026-11-01 10:00:00",
            archive=leads_run(first),
        )
    )
    project.env["TARGET_SNOWFLAKE_LOAD_METHOD"] = "append-only"
    project.run(TARGET)
    first_loaded = [
        ("0001", 3, date(2026, 11, 1), 1.5, None),
        ("0002", 4, None, 2.0, None),
    ]
    assert leads(project) == (LEADS_TYPES, first_loaded)
    # Later loads upsert (MERGE): under append-only, Snowflake would add the
    # metadata streams' rows again, where DuckDB enforces their primary key.
    del project.env["TARGET_SNOWFLAKE_LOAD_METHOD"]

    later = [
        LEADS_HEADER,
        ["0003", "5.5", "2026-11-03 10:30:00", "n/a"],
        ["0004", "n/a", "soon", "7"],
        ["0005", "6", "2026-11-04", ""],
    ]
    project.stand_in.set_run(LEADS_EXPORT, leads_run(later), "2026-11-02 10:00:00")
    project.run(TARGET)  # exits 0

    unfit_0003 = {"clicks": "5.5", "signed_up": "2026-11-03 10:30:00", "score": "n/a"}
    loaded = [
        *first_loaded,
        ("0003", None, None, None, unfit_0003),
        ("0004", None, None, 7.0, {"clicks": "n/a", "signed_up": "soon"}),
        ("0005", 6, date(2026, 11, 4), None, None),
    ]
    assert leads(project) == (LEADS_TYPES, loaded)

    # widen: the type change reaches Snowflake, which refuses it; nothing is lost.
    project.env["TAP_OKTOPOST_COLUMN_TYPING"] = "widen"
    widened = [LEADS_HEADER, ["0006", "n/a", "2026-11-05", "1"]]
    project.stand_in.set_run(LEADS_EXPORT, leads_run(widened), "2026-11-03 10:00:00")
    refused = (
        "002108 (22000): SQL compilation error: cannot change column CLICKS "
        "from type NUMBER(38,0) to VARCHAR(16777216)"
    )
    assert refused in failed_run(project)
    assert leads(project) == (LEADS_TYPES, loaded)
    assert project.bookmarks(TARGET)[LEADS_EXPORT] == "2026-11-02T10:00:00+00:00"

    # keep remembers a column's type in Meltano's state: a full refresh runs without
    # it, types CLICKS from the current run alone (text), and meets the same refusal.
    del project.env["TAP_OKTOPOST_COLUMN_TYPING"]
    assert refused in failed_run(project, "--full-refresh")
    assert leads(project) == (LEADS_TYPES, loaded)

    # Pinned to the type its table has, the column loads the run that failed.
    project.env["TAP_OKTOPOST_COLUMN_TYPES"] = json.dumps(
        {"leads": {"clicks": "integer"}}
    )
    project.run(TARGET, "--full-refresh")
    the_failed_run = ("0006", None, date(2026, 11, 5), 1.0, {"clicks": "n/a"})
    assert leads(project) == (LEADS_TYPES, [*loaded, the_failed_run])
    assert project.bookmarks(TARGET)[LEADS_EXPORT] == "2026-11-03T10:00:00+00:00"


@pytest.mark.parametrize(
    ("current", "wanted", "allowed"),
    [
        ("VARCHAR(16777216)", "VARCHAR", True),
        ("VARCHAR(50)", "STRING(100)", True),
        ("VARCHAR(100)", "VARCHAR(50)", False),
        ("NUMBER(10,2)", "DECIMAL(20, 2)", True),
        ("NUMBER(38,0)", "INTEGER", True),
        ("NUMBER(10,2)", "NUMBER(10,4)", False),
        ("NUMBER(38,0)", "VARCHAR", False),
        ("NUMBER(38,0)", "FLOAT", False),
        ("FLOAT", "DOUBLE", True),
        ("DATE", "TIMESTAMP_NTZ", False),
        ("TIMESTAMP_NTZ(9)", "TIMESTAMP", True),
    ],
)
def test_the_emulation_allows_only_the_type_changes_snowflake_makes(
    current: str, wanted: str, allowed: bool
) -> None:
    assert (
        allowed_type_change(canonical_type(current), canonical_type(wanted)) is allowed
    )


# -- Names Snowflake refuses -----------------------------------------------------------


def test_snowflake_holds_reserved_words_symbols_and_scripts_under_their_names(
    project: Project,
) -> None:
    """Every reserved word of Snowflake and PostgreSQL as a header, with symbols,
    scripts and respellings, and tables named by reserved words: all load, each
    header under its own column. A column named `view`, as the earlier release
    named that header, stops the load: target-snowflake leaves it unquoted, and
    Snowflake (emulated; DuckDB alone would take it) refuses it."""
    files = warehouse_files(2)
    project.stand_in.add_export(warehouse_export(files))
    project.env["TAP_OKTOPOST_STREAM_MAPS"] = json.dumps(
        {"reserved": {"view": "record['view_col']"}}
    )
    refused = failed_run(project)
    assert "001003 (42000): SQL compilation error" in refused
    assert "unexpected 'view'" in refused
    del project.env["TAP_OKTOPOST_STREAM_MAPS"]

    project.run(TARGET)
    with snowflake(project) as db:
        for table, (header, rows) in files.items():
            names = [name_of(cell).upper() for cell in header]
            columns = ", ".join(f'"{name}"' for name in names)
            loaded = db.query(
                f'select {columns} from "{table.upper()}" order by _SDC_ROW_NUMBER'  # noqa: S608
            )
            assert [list(row) for row in loaded] == rows
            assert set(db.column_types(table.upper())) >= set(names)


def test_the_tap_and_the_emulation_know_the_same_reserved_words() -> None:
    assert {word.upper() for word in SNOWFLAKE_RESERVED} == REFUSED_UNQUOTED


def defining(name: str) -> list[str]:
    """Statements defining a table or column `name`, as target-snowflake sends them
    (snowflake-sqlalchemy's CREATE TABLE, the SDK's ADD COLUMN)."""
    return [
        f"CREATE TABLE RAW.OKTOPOST.posts (\n\tid VARCHAR, \n\t{name} "
        "NUMBER(38, 0), \n\tPRIMARY KEY (id)\n)",
        f"CREATE TABLE RAW.OKTOPOST.{name} (\n\tid VARCHAR\n)",
        f"ALTER TABLE RAW.OKTOPOST.posts ADD COLUMN {name} VARCHAR",
    ]


@pytest.mark.parametrize("word", sorted(REFUSED_UNQUOTED))
def test_the_emulation_refuses_a_reserved_word_unquoted(word: str) -> None:
    for statement in [*defining(word.lower()), *defining(word)]:
        with pytest.raises(ProgrammingError) as error:
            refuse_reserved_names(statement)
        assert error.value.errno == 1003
    for name in (f'"{word}"', f"{word.lower()}_col", f"{word}_TABLE"):
        for statement in defining(name):
            refuse_reserved_names(statement)


# -- Numbers keep their text (issue 19) ------------------------------------------------


def test_snowflake_holds_each_number_a_float_keeps_and_the_rest_as_text(
    project: Project,
) -> None:
    """target-snowflake makes a `number` column FLOAT: the tap types a column so
    only when a 64-bit float keeps every value (15 significant digits), so each
    reads back equal to the CSV's number; integers are NUMBER(38,0) and read back
    as written; wider numbers and other notations arrive as text, as written."""
    tables = add_number_exports(project.stand_in)
    project.run(TARGET)

    kinds = {"integer": NUMBER, "number": "FLOAT", "string": VARCHAR}
    columns = {name.upper(): kinds[kind] for name, kind in NUMBER_COLUMNS.values()}
    with snowflake(project) as db:
        for table, rows in tables.items():
            types = db.column_types(table.upper())
            assert {name: types[name] for name in columns} == columns
            loaded = db.query(
                f"select {', '.join(columns)} from {table.upper()} "  # noqa: S608
                "order by _SDC_ROW_NUMBER"
            )
            assert len(loaded) == len(rows) - 1
            for got, row in zip(loaded, rows[1:], strict=True):
                for value, text, kind in zip(got, row, columns.values(), strict=True):
                    if kind == "FLOAT":
                        assert Decimal(repr(value)) == Decimal(text), (table, text)
                    else:
                        assert str(value) == text, (table, text)

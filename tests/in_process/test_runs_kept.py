"""No run is counted done unread, and one export's trouble stops no other.

Oktopost serves only an export's newest run: a run the tap skips, or marks loaded
without delivering, is lost once the next run replaces it. Each class of trouble is
generated here in many instances, among healthy exports, and synced in process: the
healthy exports load whole and move their bookmarks, the troubled one is named in an
ERROR line, keeps its bookmark and fails the sync, and a sync after the trouble is
gone loads its run.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

import pytest

from tap_oktopost.sync.ledger import read_bookmarks
from tap_oktopost.tables.names import table_name
from tests.conftest import (
    TapRun,
    config_for,
    csv_text,
    deselect,
    discover_in_process,
    export_with,
    sync_in_process,
)
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, StandInExport, make_zip

SEEDS = range(8)
WORDS = ("Leads", "Posts", "Clicks", "Reach", "Campaigns", "Shares", "Stats")
DATES = [f"2026-11-{day:02d} 10:00:00" for day in range(1, 29)]


@dataclass
class Export:
    """An export of the generated account: its files, each a header and rows."""

    export_id: str
    files: dict[str, list[list[str]]] = field(default_factory=dict)
    run_date: str = DATES[0]

    def archive(self) -> bytes:
        return make_zip({name: csv_text(rows) for name, rows in self.files.items()})

    def rows(self, table: str) -> set[tuple[str, ...]]:
        """The rows the table should hold of this export, as text."""
        return {
            tuple(row)
            for name, rows in self.files.items()
            if table_name(name) == table
            for row in rows[1:]
        }


def account(rng: random.Random, count: int) -> list[Export]:
    """Exports of one to three CSV files each, tables shared between exports."""
    exports = []
    for number in range(count):
        export = Export(f"0320000000{number + 1:05d}", run_date=rng.choice(DATES))
        for word in rng.sample(WORDS, rng.randint(1, 3)):
            header = ["Row Key", *rng.sample(["Clicks", "Name", "Day", "Reach"], 2)]
            rows = [
                [f"{export.export_id}-{word}-{row}", *(f"v{rng.randint(0, 9)}",) * 2]
                for row in range(rng.randint(1, 6))
            ]
            export.files[f"2026-11-27-{word}.csv"] = [header, *rows]
        exports.append(export)
    return exports


def serve(stand_in: OktopostStandIn, exports: list[Export]) -> None:
    for export in exports:
        stand_in.add_export(
            StandInExport(
                id=export.export_id,
                last_run_date=export.run_date,
                archive=export.archive(),
            )
        )


def received(run: TapRun, table: str) -> dict[str, set[tuple[str, ...]]]:
    """Export id -> the rows of a table the sync sent, as text in header order."""
    schemas = run.schemas(table)
    found: dict[str, set[tuple[str, ...]]] = {}
    if not schemas:
        return found
    for record in run.records(table):
        cells = tuple(
            "" if value is None else str(value)
            for name, value in record.items()
            if not name.startswith("_sdc")
            and name not in ("export_id", "sync_timestamp")
        )
        found.setdefault(record["export_id"], set()).add(cells)
    return found


def tables_of(exports: list[Export]) -> set[str]:
    return {
        name
        for export in exports
        for file in export.files
        if (name := table_name(file)) is not None
    }


def assert_loaded_whole(*runs: TapRun, exports: list[Export]) -> None:
    """Every row of these exports arrived in the runs, and each one's bookmark is
    its run after the last."""
    bookmarks = read_bookmarks(runs[-1].final_state)
    for export in exports:
        for table in {table_name(name) for name in export.files}:
            assert table is not None
            sent: set[tuple[str, ...]] = set().union(
                *(received(run, table).get(export.export_id, set()) for run in runs)
            )
            expected = {row[0] for row in export.rows(table)}
            assert {row[0] for row in sent} == expected, (export.export_id, table)
        assert bookmarks[export.export_id].run is not None, export.export_id


def error_lines(run: TapRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("ERROR ")]


# -- A run whose files hold tables the catalog lacks -------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_a_run_with_tables_the_catalog_lacks_fails_its_export_until_rediscovered(
    stand_in: OktopostStandIn, seed: int
) -> None:
    """The catalog was made before the run added a file (or by a discovery that
    could not read the export, in another process): the export's known tables load
    and keep their own bookmarks, its run stays unloaded, the others load."""
    rng = random.Random(seed)  # noqa: S311 - test data
    exports = account(rng, rng.randint(2, 4))
    serve(stand_in, exports)
    config = config_for(stand_in)
    catalog = discover_in_process(config)
    known = tables_of(exports)

    grown = rng.sample(exports, rng.randint(1, len(exports) - 1))
    for export in grown:
        new_word = f"Extra{rng.randint(0, 999)}"
        export.files[f"{new_word}.csv"] = [["Row Key"], [f"{export.export_id}-x"]]
        export.run_date = DATES[-1]
        stand_in.set_run(export.export_id, export.archive(), export.run_date)
    run = sync_in_process(config, catalog=catalog)

    assert run.returncode == 1
    errors = error_lines(run)
    for export in grown:
        assert any(
            f"Export {export.export_id}: its run of " in line
            and "files for tables the catalog lacks" in line
            for line in errors
        ), errors
    healthy = [export for export in exports if export not in grown]
    assert_loaded_whole(run, exports=healthy)
    bookmarks = read_bookmarks(run.final_state)
    for export in grown:
        bookmark = bookmarks[export.export_id]
        assert bookmark.run is None
        # Its known tables went out, and say so, so they are not sent again.
        for table in {table_name(name) for name in export.files} & known:
            assert table is not None
            assert received(run, table)[export.export_id] == export.rows(table)
            assert bookmark.tables[table] is not None

    again = sync_in_process(
        config, catalog=discover_in_process(config), state=run.final_state
    )
    assert again.returncode == 0, error_lines(again)
    for export in grown:
        for table in {table_name(name) for name in export.files} - known:
            assert table is not None
            assert received(again, table)[export.export_id] == export.rows(table)
        for table in {table_name(name) for name in export.files} & known:
            assert table is not None
            assert export.export_id not in received(again, table)
    assert all(bookmark.run for bookmark in read_bookmarks(again.final_state).values())


def test_a_catalog_with_no_csv_stream_still_fails_exports_holding_rows(
    stand_in: OktopostStandIn,
) -> None:
    """Discovery in another process read no export: the sync does not end well."""
    exports = account(random.Random(1), 2)  # noqa: S311 - test data
    serve(stand_in, exports)
    config = config_for(stand_in)
    catalog = discover_in_process(config)
    catalog["streams"] = [
        entry
        for entry in catalog["streams"]
        if entry["tap_stream_id"].endswith("metadata")
    ]
    run = sync_in_process(config, catalog=catalog)

    assert run.returncode == 1
    for export in exports:
        assert any(export.export_id in line for line in error_lines(run))
    assert not any(
        bookmark.run for bookmark in read_bookmarks(run.final_state).values()
    )


def test_deselected_tables_are_a_choice_not_a_failure(
    stand_in: OktopostStandIn,
) -> None:
    exports = account(random.Random(2), 3)  # noqa: S311 - test data
    serve(stand_in, exports)
    config = config_for(stand_in)
    catalog = discover_in_process(config)
    dropped = sorted(tables_of(exports))[0]
    deselect(catalog, dropped)
    run = sync_in_process(config, catalog=catalog)

    assert run.returncode == 0, error_lines(run)
    assert not run.records(dropped)
    assert all(bookmark.run for bookmark in read_bookmarks(run.final_state).values())


@pytest.mark.parametrize("seed", SEEDS)
def test_an_export_unreadable_at_discovery_fails_the_sync_that_uses_its_catalog(
    stand_in: OktopostStandIn, seed: int
) -> None:
    """Discovery (another process, as in `meltano run`) could not read one export;
    the sync with that catalog fails it instead of skipping it quietly, and the
    next discovery and sync load it."""
    rng = random.Random(seed)  # noqa: S311 - test data
    exports = account(rng, rng.randint(2, 4))
    serve(stand_in, exports)
    config = config_for(stand_in, max_retries=0)
    troubled = rng.choice(exports)
    stand_in.fail_next(f"/storage/{troubled.export_id}/", rng.choice([500, 502, 503]))
    catalog = discover_in_process(config)
    run = sync_in_process(config, catalog=catalog)

    others = [export for export in exports if export is not troubled]
    only_in_troubled = tables_of([troubled]) - tables_of(others)
    assert {e["tap_stream_id"] for e in catalog["streams"]}.isdisjoint(only_in_troubled)
    assert run.returncode == 1
    assert any(troubled.export_id in line for line in error_lines(run))
    assert_loaded_whole(run, exports=others)
    bookmark = read_bookmarks(run.final_state).get(troubled.export_id)
    assert bookmark is None or bookmark.run is None

    again = sync_in_process(
        config, catalog=discover_in_process(config), state=run.final_state
    )
    assert again.returncode == 0, error_lines(again)
    assert_loaded_whole(run, again, exports=[troubled])


# -- A file without a key column -----------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_a_file_lacking_a_key_column_fails_that_table_of_its_export_only(
    stand_in: OktopostStandIn, seed: int
) -> None:
    """With primary_keys naming a column, a file without it would send rows with no
    key, which a target refuses for every export: that table of that export fails
    before any of its rows, everything else loads."""
    rng = random.Random(seed)  # noqa: S311 - test data
    exports = account(rng, rng.randint(3, 5))
    table = rng.choice(sorted(tables_of(exports)))
    holders = [
        export
        for export in exports
        if any(table_name(name) == table for name in export.files)
    ]
    if len(holders) < 2:
        extra = rng.choice([e for e in exports if e not in holders])
        extra.files[f"{table}.csv"] = [
            ["Row Key", "Name"],
            [f"{extra.export_id}-k", "n"],
        ]
        holders.append(extra)
    lacking = rng.sample(holders, rng.randint(1, len(holders) - 1))
    for export in lacking:
        for name, rows in export.files.items():
            if table_name(name) == table:
                export.files[name] = [row[1:] or ["x"] for row in rows]
    serve(stand_in, exports)
    config = config_for(stand_in, primary_keys={table: ["row_key"]})
    run = sync_in_process(config)

    assert run.returncode == 1
    errors = error_lines(run)
    for export in lacking:
        assert any(
            f"Setting primary_keys: table {table} is keyed by row_key, but export "
            f"{export.export_id}'s file " in line
            for line in errors
        ), errors
    assert all(record.get("row_key") for record in run.records(table))
    sent = received(run, table)
    assert not set(sent) & {export.export_id for export in lacking}
    bookmarks = read_bookmarks(run.final_state)
    for export in exports:
        if export in lacking:
            assert bookmarks[export.export_id].run is None
            # Its other tables went out whole.
            for other in {table_name(n) for n in export.files} - {table}:
                assert other is not None
                assert {row[0] for row in received(run, other)[export.export_id]} == {
                    row[0] for row in export.rows(other)
                }
        else:
            assert_loaded_whole(run, exports=[export])

    # The exports are fixed: their next run holds the key column.
    for export in lacking:
        for name, rows in export.files.items():
            if table_name(name) == table:
                export.files[name] = [
                    ["Row Key", *rows[0]],
                    *(
                        [f"{export.export_id}-{n}", *row]
                        for n, row in enumerate(rows[1:])
                    ),
                ]
        export.run_date = DATES[-1]
        stand_in.set_run(export.export_id, export.archive(), export.run_date)
    again = sync_in_process(config, state=run.final_state)
    assert again.returncode == 0, error_lines(again)
    assert_loaded_whole(run, again, exports=lacking)


# -- Runs dated back, or like a run loaded before -----------------------------------

DATED_BACK = re.compile(
    r"its run of (\S+) is dated before the run already loaded \((\S+)\)"
)
LOADED_BEFORE = re.compile(
    r"a run dated (\S+) was loaded before, from file (.+?); "
    r"this run's file, (.+?), loads"
)


def run_date(day: int) -> str:
    return f"2026-11-{day:02d}T10:00:00+00:00"


@pytest.mark.parametrize("seed", SEEDS)
def test_runs_out_of_order_load_and_say_so(
    stand_in: OktopostStandIn, seed: int
) -> None:
    """A sequence of runs of one export: forward, dated back, a re-run dated like an
    earlier run in another file. Each run loads whole; the warnings name the dates
    and files exactly when a date goes back or repeats."""
    rng = random.Random(seed)  # noqa: S311 - test data
    export_id = "032000000000777"
    stand_in.add_export(
        export_with(export_id, {"Leads.csv": "Lead\nfirst\n"}, "2026-11-10 10:00:00")
    )
    config = config_for(stand_in)
    state = sync_in_process(config).final_state
    loaded: dict[str, str] = {run_date(10): "2026-11-27-Posts-Report.zip"}
    latest = run_date(10)
    for step in range(6):
        day = rng.choice([rng.randint(1, 28), int(latest[8:10])])
        date = run_date(day)
        file = f"run-{seed}-{step}.zip"
        rows = [["Lead"], *([f"r{step}-{n}"] for n in range(rng.randint(1, 4)))]
        stand_in.set_run(export_id, make_zip({"Leads.csv": csv_text(rows)}), date, file)
        run = sync_in_process(config, state=state)

        assert run.returncode == 0, error_lines(run)
        assert {r["lead"] for r in run.records("leads")} == {row[0] for row in rows[1:]}
        back = DATED_BACK.findall(run.stderr)
        before = LOADED_BEFORE.findall(run.stderr)
        assert back == ([(date, latest)] if date < latest else [])
        assert before == ([(date, loaded[date], file)] if date in loaded else [])
        loaded[date] = file
        latest = date
        state = run.final_state
        assert read_bookmarks(state)[export_id].run == date

        # Nothing more to load: the same run is not loaded twice.
        quiet = sync_in_process(config, state=state)
        assert not quiet.records("leads")

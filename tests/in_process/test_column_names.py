"""Names through a whole sync: each header text arrives under its own column, the
columns an existing table has keep their names after an upgrade, and stream names
that differ only by case are refused before anything is sent."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from tap_oktopost.api.errors import OktopostError
from tap_oktopost.tables.names import (
    RESERVED,
    SYMBOL_WORDS,
    column_names,
    name_of,
    text_key,
)
from tap_oktopost.tap import TapOktopost
from tests.conftest import (
    config_for,
    csv_text,
    discover_in_process,
    export_with,
    run_tap,
    sync_in_process,
)
from tests.end_to_end.test_targets import Project, column_types, project, table_rows
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, make_zip
from tests.unit.test_names import OTHER_SCRIPTS, WORDS, earlier_rule, variant

__all__ = ["project"]  # the fixture, from the PostgreSQL tests

FIRST, SECOND = "032000000000001", "032000000000002"
METADATA = {
    "export_id",
    "sync_timestamp",
    "_sdc_source_file",
    "_sdc_row_number",
    "_sdc_export_run_at",
    "_sdc_extra",
    "_sdc_unfit_values",
}


def generated_header(rng: random.Random, size: int) -> list[str]:
    """Header texts of every class: plain, symbols, other scripts, reserved words."""
    makers = [
        lambda: " ".join(rng.sample(WORDS, rng.randint(1, 3))).title(),
        lambda: f"{rng.choice(WORDS).title()} ({rng.choice(list(SYMBOL_WORDS))})",
        lambda: f"{rng.choice(WORDS)} {rng.choice(list(OTHER_SCRIPTS.values()))}",
        lambda: rng.choice(sorted(RESERVED)).title(),
        lambda: f"CTR ({rng.choice(['%', '#'])})",
    ]
    cells: dict[str, str] = {}
    while len(cells) < size:
        cell = rng.choice(makers)()
        cells.setdefault(text_key(cell), cell)  # one cell per column in a file
    return list(cells.values())


def values_for(header: list[str], rows: int, tag: str) -> list[list[str]]:
    return [[f"{tag}-{row}-{column}" for column in header] for row in range(rows)]


def file_records(run: Any, table: str, export_id: str) -> list[dict[str, Any]]:
    return [r for r in run.records(table) if r["export_id"] == export_id]


@pytest.mark.parametrize("seed", range(8))
def test_each_header_text_arrives_in_its_own_column(
    stand_in: OktopostStandIn, seed: int
) -> None:
    """Two exports share a table; the second writes some of the first's headers
    with other case, accents or separators: those land in the same columns."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    first = generated_header(rng, 12)
    respelt = [variant(rng, cell) for cell in rng.sample(first, 4)]
    second = [*respelt, *generated_header(rng, 6)]
    second = list({text_key(cell): cell for cell in second}.values())
    rows = {FIRST: values_for(first, 3, "a"), SECOND: values_for(second, 2, "b")}
    headers = {FIRST: first, SECOND: second}
    for export_id, header in headers.items():
        table = csv_text([header, *rows[export_id]])
        stand_in.add_export(export_with(export_id, {"Report.csv": table}))
    config = config_for(stand_in)
    run = sync_in_process(config, catalog=discover_in_process(config))

    assert run.returncode == 0, run.stderr
    schema = run.schemas("report")[-1]
    properties = schema["properties"]
    for export_id, header in headers.items():
        records = file_records(run, "report", export_id)
        names = [name_of(cell) for cell in header]
        assert [[r[name] for name in names] for r in records] == rows[export_id]
        for cell, name in zip(header, names, strict=True):
            assert text_key(properties[name]["description"]) == text_key(cell)
            assert name not in RESERVED
    # One column per text, whatever the neighbours: no other columns.
    expected = {name_of(cell) for header in headers.values() for cell in header}
    assert set(properties) - METADATA == expected


def legacy_catalog(catalog: dict[str, Any], table: str, header: list[str]) -> None:
    """Rename a discovered table's columns as the earlier release named them."""
    (entry,) = [e for e in catalog["streams"] if e["tap_stream_id"] == table]
    properties = entry["schema"]["properties"]
    for new, old in zip(column_names(header), earlier_rule(header), strict=True):
        properties[old] = properties.pop(new)
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == ["properties", new]:
                metadata["breadcrumb"] = ["properties", old]


UPGRADE_HEADERS = [
    ["Post ID", "CTR (%)", "CTR (#)", "Qualify", "Привет", "Spend ($)"],
    ["投稿", "Clicks", "clicks", "Left", "Rate %", "Case"],
    ["Name", "Name (%)", "Order", "Group #", "Café", "Cafe"],
]


@pytest.mark.parametrize("header", UPGRADE_HEADERS)
def test_an_upgrade_renames_no_column_of_an_existing_table(
    stand_in: OktopostStandIn, header: list[str]
) -> None:
    """A user's catalog and state come from the earlier release: the rows keep
    arriving under the earlier names, through a sync with that catalog, then one
    with a catalog discovered afresh beside the state, as Meltano runs it."""
    rows = values_for(header, 3, "r")
    stand_in.add_export(export_with(FIRST, {"Posts.csv": csv_text([header, *rows])}))
    config = config_for(stand_in)
    old_catalog = discover_in_process(config)
    legacy_catalog(old_catalog, "posts", header)
    before = earlier_rule(header)

    first = sync_in_process(config, catalog=old_catalog)
    assert first.returncode == 0, first.stderr
    assert [[r[n] for n in before] for r in first.records("posts")] == rows
    assert set(first.schemas("posts")[0]["properties"]) - METADATA == set(before)

    later_rows = values_for(header, 2, "s")
    stand_in.set_run(
        FIRST,
        make_zip({"Posts.csv": csv_text([header, *later_rows])}),
        "2026-11-28 10:00:00",
    )
    fresh = discover_in_process(config)  # Meltano discovers without the state
    second = sync_in_process(config, catalog=fresh, state=first.final_state)
    assert second.returncode == 0, second.stderr
    assert [[r[n] for n in before] for r in second.records("posts")] == later_rows
    # No empty twin under today's name joins the table, nor the state.
    assert set(second.schemas("posts")[-1]["properties"]) - METADATA == set(before)
    types = second.final_state["bookmarks"]["posts"]["column_types"]
    assert set(types) == set(before)
    # Discovery given the state names the columns as the table has them too.
    with_state = TapOktopost(config=config, state=copy.deepcopy(first.final_state))
    properties = with_state.catalog_dict["streams"]
    (posts,) = [e for e in properties if e["tap_stream_id"] == "posts"]
    assert set(posts["schema"]["properties"]) - METADATA == set(before)


# -- Stream names that differ only by case ---------------------------------------------


def demo_tables(stand_in: OktopostStandIn, tables: list[str]) -> None:
    members = {f"{table}.csv": csv_text([["Id"], ["1"]]) for table in tables}
    stand_in.add_export(export_with(FIRST, members))


@pytest.mark.parametrize("seed", range(6))
def test_stream_names_differing_only_by_case_are_refused(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    tables = sorted(set(rng.sample(WORDS, 4)))
    demo_tables(stand_in, tables)
    source, target = rng.sample(tables, 2)
    alias = "".join(rng.choice([c.upper(), c]) for c in target)
    alias = alias if alias != target else target.title()
    maps = {source: {"__alias__": alias}}
    config = config_for(stand_in, stream_maps=maps)
    catalog = discover_in_process(config_for(stand_in))
    with pytest.raises(OktopostError) as refused:
        TapOktopost(config=config, catalog=catalog)
    message = str(refused.value)
    assert f"{alias} and {target}" in message or f"{target} and {alias}" in message
    assert "stream_maps" in message
    # Aliases that differ by more than case load.
    fine = config_for(stand_in, stream_maps={source: {"__alias__": f"{target}_copy"}})
    run = sync_in_process(fine, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(run.records(f"{target}_copy")) == 1


def test_a_case_clash_exits_1_before_any_message(
    stand_in: OktopostStandIn, tmp_path: Any
) -> None:
    demo_tables(stand_in, ["leads", "posts"])
    maps = {"posts": {"__alias__": "Leads"}}
    catalog = discover_in_process(config_for(stand_in))
    run = run_tap(
        config_for(stand_in, stream_maps=maps), tmp_path, catalog=catalog, check=False
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert "Streams Leads and leads differ only by case" in run.stderr
    assert "Traceback" not in run.stderr


# -- Into the warehouses ---------------------------------------------------------------


def warehouse_files(seed: int) -> dict[str, tuple[list[str], list[list[str]]]]:
    """CSV files of headers warehouses choke on, by table name: every reserved word
    of Snowflake and PostgreSQL, with seeded symbols, scripts and respellings;
    tables named by reserved words."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    reserved = [rng.choice([w.title(), w.upper(), w]) for w in sorted(RESERVED)]
    header = [*reserved, "Qualify Col", *generated_header(rng, 12)]
    header = list({text_key(cell): cell for cell in header}.values())
    files = {"reserved": (header, values_for(header, 3, f"w{seed}"))}
    for word in rng.sample(["Qualify", "Order", "User", "When", "Window"], 2):
        files[f"{word.lower()}_table"] = ([word, "Id"], [["x", "id-1"], ["y", "id-2"]])
    return files


def warehouse_export(files: dict[str, tuple[list[str], list[list[str]]]]) -> Any:
    members = {
        f"{'Reserved' if table == 'reserved' else header[0]}.csv": csv_text(
            [header, *rows]
        )
        for table, (header, rows) in files.items()
    }
    return export_with(FIRST, members)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2))
def test_postgres_holds_reserved_words_symbols_and_scripts_under_their_names(
    project: Project, seed: int
) -> None:
    files = warehouse_files(seed)
    project.stand_in.add_export(warehouse_export(files))
    project.run("target-postgres")
    for table, (header, rows) in files.items():
        loaded = table_rows(project.schema, table)
        names = [name_of(cell) for cell in header]
        assert [[row[name] for name in names] for row in loaded] == rows
        assert set(column_types(project.schema, table)) >= set(names)

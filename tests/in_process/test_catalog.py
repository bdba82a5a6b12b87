"""A catalog that tells the truth: the types it says are the types a sync sends.

Discovery types each archive of up to `whole_file_discovery_bytes` from every row;
above that it samples the first 2,000 rows, and the sync then warns once per column
it sends with another type. Discovery and sync share each archive through the
on-disk cache, so that two processes (Meltano's way) download it once.
"""

from __future__ import annotations

import os
import random
import re
import stat
import subprocess
import sys
import textwrap
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tap_oktopost.tables.column_types import column_type_of
from tap_oktopost.tables.column_typing import SAMPLE_ROWS
from tests.conftest import (
    config_for,
    csv_text,
    discover_in_process,
    export_with,
    sync_in_process,
)
from tests.end_to_end.test_downloads import big_export
from tests.end_to_end.test_targets import Project, project  # noqa: F401 - `project` is the fixture
from tests.stand_ins.oktopost_stand_in import (
    DATASETS,
    STORAGE_PREFIX,
    TYPES_CHANGE_AFTER_ROWS,
    make_zip,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.conftest import TapRun
    from tests.stand_ins.oktopost_stand_in import OktopostStandIn, RecordedRequest

EXPORT = "032000000000001"
TABLE = "drift"


def property_types(schema: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Column -> its JSON types and format, as a target builds its column."""
    return {
        name: (tuple(column.get("type", ())), column.get("format"))
        for name, column in schema["properties"].items()
    }


def csv_streams(catalog: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        entry["tap_stream_id"]: entry["schema"]
        for entry in catalog["streams"]
        if "_sdc_source_file" in entry["schema"]["properties"]
    }


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_the_catalog_says_the_types_every_sync_schema_sends(
    stand_in: OktopostStandIn, dataset: str
) -> None:
    for export in DATASETS[dataset]():
        stand_in.add_export(export)
    config = config_for(stand_in)
    catalog = discover_in_process(config)
    run = sync_in_process(config, catalog=catalog)

    assert run.returncode == 0, run.stderr
    tables = csv_streams(catalog)
    assert tables
    for table, schema in tables.items():
        sent = run.schemas(table)
        assert sent, table
        for message in sent:
            assert property_types(message) == property_types(schema), table
    assert "the catalog says" not in run.stderr


FILE_KINDS: dict[str, Callable[[random.Random], str]] = {
    "small integers": lambda rng: str(rng.randint(-999, 99_999)),
    "15-digit integers": lambda rng: str(rng.randint(10**14, 10**15 - 1)),
    "long integers": lambda rng: str(rng.randint(10**15, 9 * 10**18)),
    "decimals": lambda rng: f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}",
    "blanks": lambda rng: "",
}


@pytest.mark.parametrize("seed", range(12))
def test_the_catalog_joins_each_exports_file_as_the_sync_does(
    stand_in: OktopostStandIn, seed: int
) -> None:
    """One table in two to four exports, each file of one kind of numbers: the
    catalog's type is the one the sync sends, long integers beside decimals too."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    kinds = [rng.choice(sorted(FILE_KINDS)) for _ in range(rng.randint(2, 4))]
    for number, kind in enumerate(kinds):
        rows = [["Id", "Amount"]] + [
            [str(row), FILE_KINDS[kind](rng)] for row in range(rng.randint(5, 40))
        ]
        stand_in.add_export(
            export_with(f"0320000000009{number:02d}", {"Amounts.csv": csv_text(rows)})
        )
    config = config_for(stand_in)
    catalog = discover_in_process(config)
    run = sync_in_process(config, catalog=catalog)

    assert run.returncode == 0, run.stderr
    declared = property_types(csv_streams(catalog)["amounts"])
    for message in run.schemas("amounts"):
        assert property_types(message) == declared, kinds
    assert "the catalog says" not in run.stderr, kinds


TYPE_CHANGES: dict[str, tuple[Any, Any, str, str]] = {
    # pair: (cell before, cell after, whole-file type, sampled type)
    "integer->text": (
        lambda rng: str(rng.randint(-500, 50_000)),
        lambda rng: rng.choice(["N/A", "n/a", "-", "12 clicks", "1e3"]),
        "string",
        "integer",
    ),
    "number->text": (
        lambda rng: f"{rng.uniform(-50, 500):.{rng.randint(1, 4)}f}",
        lambda rng: rng.choice(["N/A", "1,5", "12%", "-", "∞"]),
        "string",
        "number",
    ),
    "date->text": (
        lambda rng: f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        lambda rng: rng.choice(["soon", "2026-02-30", "11/02/2026", "never"]),
        "string",
        "date",
    ),
    "boolean->text": (
        lambda rng: rng.choice(["true", "false", "TRUE", "False"]),
        lambda rng: rng.choice(["yes", "maybe", "1", "n/a"]),
        "string",
        "boolean",
    ),
    "integer->number": (
        lambda rng: str(rng.randint(0, 99_999)),
        lambda rng: f"{rng.randint(0, 999)}.{rng.randint(1, 99)}",
        "number",
        "integer",
    ),
}


def change_points(pair: str) -> list[int]:
    """The rows after which a pair's type changes: each side of the sample's end."""
    rng = random.Random(pair)  # noqa: S311 - test data, not secrets
    return [
        1,
        rng.randint(2, SAMPLE_ROWS - 1),
        SAMPLE_ROWS,
        rng.randint(SAMPLE_ROWS + 1, 2 * SAMPLE_ROWS),
    ]


CASES = [
    pytest.param(pair, after, id=f"{pair}-after-{after}")
    for pair in TYPE_CHANGES
    for after in change_points(pair)
]


def changing_rows(pair: str, after: int) -> list[list[str]]:
    """A CSV (header first) whose `value` changes type after row `after`.

    The first row past it is of the later kind; later rows mix both kinds.
    """
    before, later, _, _ = TYPE_CHANGES[pair]
    rng = random.Random(f"{pair}/{after}")  # noqa: S311 - test data, not secrets
    rows = [["Row ID", "Value", "Note"]]
    for number in range(1, after + 40):
        late = number == after + 1 or (number > after and rng.random() < 0.5)
        cell = later(rng) if late else before(rng)
        rows.append([f"R{number:05d}", cell, rng.choice(["a", "b, c", ""])])
    return rows


def sent_as_written(run: TapRun, rows: list[list[str]], column_type: str) -> None:
    """Every row arrives, in order, its value the text as written."""
    records = sorted(run.records(TABLE), key=lambda r: r["_sdc_row_number"])
    assert len(records) == len(rows) - 1
    for record, row in zip(records, rows[1:], strict=True):
        assert record["row_id"] == row[0]
        value = record["value"]
        assert record["_sdc_unfit_values"] is None
        if column_type == "number":
            assert Decimal(str(value)) == Decimal(row[1]), row
        else:
            assert value == row[1], row


def sync_changing_file(
    stand_in: OktopostStandIn, pair: str, after: int, **settings: Any
) -> tuple[dict[str, Any], TapRun, list[list[str]]]:
    rows = changing_rows(pair, after)
    stand_in.add_export(export_with(EXPORT, {"Drift.csv": csv_text(rows)}))
    config = config_for(stand_in, **settings)
    catalog = discover_in_process(config)
    return catalog, sync_in_process(config, catalog=catalog), rows


def value_type(schema: dict[str, Any]) -> str:
    return column_type_of(schema["properties"]["value"]).value


@pytest.mark.parametrize(("pair", "after"), CASES)
def test_a_file_read_whole_gives_the_catalog_the_type_its_sync_sends(
    stand_in: OktopostStandIn, pair: str, after: int
) -> None:
    catalog, run, rows = sync_changing_file(stand_in, pair, after)
    wide = TYPE_CHANGES[pair][2]

    assert run.returncode == 0, run.stderr
    assert value_type(csv_streams(catalog)[TABLE]) == wide
    assert {value_type(schema) for schema in run.schemas(TABLE)} == {wide}
    assert "the catalog says" not in run.stderr
    sent_as_written(run, rows, wide)


@pytest.mark.parametrize(("pair", "after"), CASES)
def test_a_sampled_file_warns_once_per_column_the_sync_sends_wider(
    stand_in: OktopostStandIn, pair: str, after: int
) -> None:
    catalog, run, rows = sync_changing_file(
        stand_in, pair, after, whole_file_discovery_bytes=1
    )
    _, _, wide, narrow = TYPE_CHANGES[pair]
    sampled = after >= SAMPLE_ROWS  # the change lies past the sample

    assert run.returncode == 0, run.stderr
    assert value_type(csv_streams(catalog)[TABLE]) == (narrow if sampled else wide)
    assert {value_type(schema) for schema in run.schemas(TABLE)} == {wide}
    warning = (
        f"Stream {TABLE}, column value: the catalog says {narrow}, this sync sends "
        f"{wide}: export {EXPORT}'s file holds values the catalog's type does not fit"
    )
    assert run.stderr.count(warning) == (1 if sampled else 0)
    assert run.stderr.count("the catalog says") == (1 if sampled else 0)
    sent_as_written(run, rows, wide)


def test_a_pinned_or_text_column_is_in_the_catalog_as_the_sync_sends_it(
    stand_in: OktopostStandIn,
) -> None:
    rows = changing_rows("integer->number", 10)
    stand_in.add_export(export_with(EXPORT, {"Drift.csv": csv_text(rows)}))
    for settings in (
        {"column_typing": "text"},
        {"column_types": {TABLE: {"value": "string"}}},
    ):
        config = config_for(stand_in, **settings)
        catalog = discover_in_process(config)
        run = sync_in_process(config, catalog=catalog)
        assert value_type(csv_streams(catalog)[TABLE]) == "string"
        assert {value_type(schema) for schema in run.schemas(TABLE)} == {"string"}
        assert "the catalog says" not in run.stderr


# -- the archive cache shared by discovery and sync ---------------------------------


def export_of(request: RecordedRequest) -> str:
    return request.path.removeprefix(STORAGE_PREFIX).partition("/")[0]


def bodies_by_export(stand_in: OktopostStandIn) -> dict[str, int]:
    """Export -> storage answers that carried its file (or part of it)."""
    counts: dict[str, int] = {}
    for request in stand_in.downloads():
        if request.status in {200, 206}:
            counts[export_of(request)] = counts.get(export_of(request), 0) + 1
    return counts


def cache_folder(tmp_path: Path) -> Path:
    """The folder the tap caches in under the tests (see conftest)."""
    return tmp_path / "cache" / "tap-oktopost" / "archives"


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.zip"))


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_discovery_and_sync_in_two_taps_download_each_archive_once(
    stand_in: OktopostStandIn, dataset: str
) -> None:
    exports = DATASETS[dataset]()
    for export in exports:
        stand_in.add_export(export)
    config = config_for(stand_in)
    catalog = discover_in_process(config)
    after_discovery = stand_in.bytes_served
    run = sync_in_process(config, catalog=catalog)

    assert run.returncode == 0, run.stderr
    active = {e.id for e in exports if e.archive and e.status == "active"}
    assert bodies_by_export(stand_in) == dict.fromkeys(active, 1)
    assert stand_in.bytes_served == after_discovery  # the sync downloaded nothing
    assert {export_of(r) for r in stand_in.downloads() if r.status == 304} == active
    assert "comes from the cache" in run.stderr


def test_the_cache_is_private_and_names_no_export_data_or_link(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    for export in DATASETS["demo"]():
        stand_in.add_export(export)
    config = config_for(stand_in)
    run = sync_in_process(config, catalog=discover_in_process(config))

    folder = cache_folder(tmp_path)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    names = [path.name for path in folder.iterdir()]
    assert names
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        assert re.fullmatch(r"\.lock|[0-9a-f]{24}-[0-9a-f]{24}\.(zip|json)", path.name)
    for path in folder.glob("*.json"):
        assert "X-Amz" not in path.read_text()
    assert "X-Amz-Signature" not in run.stderr


def test_a_newer_run_replaces_the_cached_older_one(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    other = export_with("032000000000002", {"Other.csv": "id\n1\n"})
    stand_in.add_export(other)
    state: dict[str, Any] | None = None
    for day in range(20, 24):
        rows = [["Id", "Clicks"]] + [
            [str(n), str(rng.randint(0, 99))] for n in range(rng.randint(1, 50))
        ]
        archive = make_zip({"Stats.csv": csv_text(rows)})
        if day == 20:
            stand_in.add_export(export_with(EXPORT, {"Stats.csv": csv_text(rows)}))
        stand_in.set_run(EXPORT, archive, f"2026-11-{day} 10:00:00")
        config = config_for(stand_in)
        run = sync_in_process(config, catalog=discover_in_process(config), state=state)
        state = run.final_state
        assert len(run.records("stats")) == len(rows) - 1

        kept = entries(cache_folder(tmp_path))
        assert len(kept) == 2  # one run of each export
        assert {path.read_bytes() for path in kept} == {archive, other.archive}


def stand_in_archive(stand_in: OktopostStandIn, export_id: str) -> bytes:
    data = stand_in._archive(export_id)
    assert data is not None
    return data


def test_the_cache_keeps_under_its_bound_dropping_the_least_recently_used(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    rng = random.Random(11)  # noqa: S311 - test data, not secrets
    archives = {}
    for number in range(1, 6):
        rows = [["Id", "Text"]] + [
            [str(n), "".join(rng.choices("abcdefgh", k=40))] for n in range(100)
        ]
        export_id = f"0320000000000{number:02d}"
        export = export_with(export_id, {f"T{number}.csv": csv_text(rows)})
        archives[export_id] = export.archive
        stand_in.add_export(export)
    sizes = sorted(len(data or b"") for data in archives.values())
    bound = sizes[-1] + sizes[-2]  # room for two archives, not three
    config = config_for(stand_in, archive_cache_bytes=bound)
    run = sync_in_process(config, catalog=discover_in_process(config))
    assert run.returncode == 0, run.stderr

    kept = entries(cache_folder(tmp_path))
    assert sum(path.stat().st_size for path in kept) <= bound
    assert 1 <= len(kept) <= 2
    assert {path.read_bytes() for path in kept} <= set(archives.values())

    small = config_for(stand_in, archive_cache_bytes=sizes[0] - 1)
    stand_in.reset_log()
    sync_in_process(small, catalog=discover_in_process(small))
    assert entries(cache_folder(tmp_path)) == kept  # larger than the bound: not kept


DAMAGES: dict[str, Callable[[Path], object]] = {
    "a byte flipped": lambda path: path.write_bytes(
        bytes([path.read_bytes()[0] ^ 0xFF]) + path.read_bytes()[1:]
    ),
    "cut short": lambda path: path.write_bytes(path.read_bytes()[:-7]),
    "grown": lambda path: path.write_bytes(path.read_bytes() + b"\0"),
    "emptied": lambda path: path.write_bytes(b""),
    "its record gone": lambda path: path.with_suffix(".json").unlink(),
    "its record garbled": lambda path: path.with_suffix(".json").write_text("{"),
    "its archive gone": lambda path: path.unlink(),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_cache_entry_is_downloaded_again_never_loaded(
    stand_in: OktopostStandIn, tmp_path: Path, damage: str
) -> None:
    for export in DATASETS["demo"]():
        stand_in.add_export(export)
    config = config_for(stand_in)
    catalog = discover_in_process(config)
    for path in entries(cache_folder(tmp_path)):
        DAMAGES[damage](path)
    stand_in.reset_log()
    run = sync_in_process(config, catalog=catalog)

    assert run.returncode == 0, run.stderr
    assert run.record_counts()["posts"] == 40
    assert run.record_counts()["campaigns"] == 10
    assert set(bodies_by_export(stand_in).values()) == {1}
    assert "cached archive is damaged or incomplete" in run.stderr
    for path in entries(cache_folder(tmp_path)):  # whole again
        assert path.read_bytes() == stand_in_archive(stand_in, path_export(path))


def path_export(path: Path) -> str:
    """The demo export a cache entry holds, found by its archive's bytes."""
    found = [e.id for e in DATASETS["demo"]() if e.archive == path.read_bytes()]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("style", ["none", "weak"])
def test_only_a_file_with_an_etag_is_cached(
    stand_in: OktopostStandIn, tmp_path: Path, style: str
) -> None:
    stand_in.etag_style = style
    for export in DATASETS["demo"]():
        stand_in.add_export(export)
    config = config_for(stand_in)
    run = sync_in_process(config, catalog=discover_in_process(config))

    assert run.record_counts()["posts"] == 40
    downloads = bodies_by_export(stand_in)
    assert set(downloads.values()) == ({2} if style == "none" else {1})
    assert bool(entries(cache_folder(tmp_path))) is (style == "weak")


def test_a_cache_folder_that_cannot_be_made_costs_a_download_not_the_sync(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    for export in DATASETS["demo"]():
        stand_in.add_export(export)
    config = config_for(stand_in, archive_cache_dir=str(blocker / "archives"))
    run = sync_in_process(config, catalog=discover_in_process(config))

    assert run.returncode == 0, run.stderr
    assert run.record_counts()["posts"] == 40
    assert set(bodies_by_export(stand_in).values()) == {2}
    assert "archives are not cached" in run.stderr


RACER = textwrap.dedent(
    """
    import hashlib, logging, sys, tempfile
    from pathlib import Path
    from tap_oktopost.archives.cache import ArchiveCache, RunKey

    folder, seed = Path(sys.argv[1]), int(sys.argv[2])
    cache = ArchiveCache(folder, 3 * 1024 * 1024, logging.getLogger("racer"))
    work = Path(tempfile.mkdtemp())
    bad = 0
    for turn in range(40):
        run = (seed + turn) % 3
        key = RunKey("032000000000001", f"2026-11-{20 + run}", f"run-{run}.zip")
        data = bytes([run]) * (300_000 + run)
        source = work / "source.zip"
        source.write_bytes(data)
        cache.store(key, source, f'"etag-{run}"')
        got = cache.fetch(key, work / "copy.zip")
        if got is not None and got.path.read_bytes() != data:
            bad += 1
        if got is not None and got.etag != f'"etag-{run}"':
            bad += 1
    print(bad)
    """
)


def test_processes_racing_on_one_cache_never_read_another_run_or_half_a_file(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "shared"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(folder), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for seed in range(4)
    ]
    outcomes = [racer.communicate(timeout=120) for racer in racers]

    assert [
        (racer.returncode, out.strip())
        for racer, (out, _) in zip(racers, outcomes, strict=True)
    ] == [(0, "0")] * 4, outcomes
    left = sorted(path.name for path in folder.iterdir())
    assert not [name for name in left if name.startswith(".part-")]
    zips = [name for name in left if name.endswith(".zip")]
    assert len(zips) == 1  # one run of the export: the others were replaced
    assert (folder / zips[0]).with_suffix(".json").exists()


def test_an_archive_past_the_setting_is_sampled_by_range_and_the_sync_warns(
    stand_in: OktopostStandIn,
) -> None:
    export = big_export(20_000)  # its row -5 holds "n/a", past the sample
    assert export.archive is not None
    stand_in.add_export(export)
    config = config_for(stand_in, whole_file_discovery_bytes=len(export.archive) // 2)
    catalog = discover_in_process(config)

    (first, *reads) = stand_in.downloads()
    assert "Range" not in first.headers  # stopped at its Content-Length
    assert reads
    assert all(r.headers["Range"].startswith("bytes=") for r in reads)
    assert value_of(csv_streams(catalog)["posts"], "clicks") == "integer"

    run = sync_in_process(config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert {value_of(s, "clicks") for s in run.schemas("posts")} == {"string"}
    assert run.stderr.count("the catalog says") == 1
    assert (
        f"Stream posts, column clicks: the catalog says integer, this sync sends "
        f"string: export {EXPORT}'s file"
    ) in run.stderr
    assert run.records("posts")[-5]["clicks"] == "n/a"


def value_of(schema: dict[str, Any], column: str) -> str:
    return column_type_of(schema["properties"][column]).value


@pytest.mark.slow
def test_meltano_run_downloads_each_archive_once_and_sends_the_catalogs_types(
    project: Project,  # noqa: F811 - the fixture
) -> None:
    exports = [*DATASETS["demo"](), *DATASETS["drifting"]()]
    for export in exports:
        project.stand_in.add_export(export)

    done = project.run("target-jsonl")

    active = {e.id for e in exports if e.archive and e.status == "active"}
    assert bodies_by_export(project.stand_in) == dict.fromkeys(active, 1)
    assert {
        export_of(r) for r in project.stand_in.downloads() if r.status == 304
    } == active
    assert "the catalog says" not in done.stderr
    clicks = (project.folder / "jsonl" / "clicks.jsonl").read_text().splitlines()
    assert len(clicks) == TYPES_CHANGE_AFTER_ROWS + 300


@pytest.mark.parametrize("seed", range(3))
def test_a_type_the_target_keeps_is_the_warnings_reason_not_the_file(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    first = [["Id", "Clicks"]] + [[str(n), str(rng.randint(0, 99))] for n in range(9)]
    stand_in.add_export(export_with(EXPORT, {"Stats.csv": csv_text(first)}))
    config = config_for(stand_in)
    loaded = sync_in_process(config, catalog=discover_in_process(config))
    later = [["Id", "Clicks"], ["1", rng.choice(["n/a", "-", "7.5"])], ["2", "3"]]
    archive = make_zip({"Stats.csv": csv_text(later)})
    stand_in.set_run(EXPORT, archive, "2026-11-28 10:00:00")
    catalog = discover_in_process(config)
    run = sync_in_process(config, catalog=catalog, state=loaded.final_state)

    wide = value_of(csv_streams(catalog)["stats"], "clicks")
    assert wide in {"string", "number"}
    assert {value_of(s, "clicks") for s in run.schemas("stats")} == {"integer"}
    assert run.stderr.count("the catalog says") == 1
    assert (
        f"Stream stats, column clicks: the catalog says {wide}, this sync sends "
        "integer: the column_typing setting and the state's column types say so"
    ) in run.stderr
    (unfit,) = [r for r in run.records("stats") if r["_sdc_unfit_values"]]
    assert unfit["_sdc_unfit_values"] == {"clicks": later[1][1]}


def test_a_cached_archive_past_max_archive_bytes_is_refused_before_a_byte_is_copied(
    stand_in: OktopostStandIn,
) -> None:
    for export in DATASETS["demo"]():
        stand_in.add_export(export)
    catalog = discover_in_process(config_for(stand_in))
    posts = stand_in_archive(stand_in, "032000000000101")
    stand_in.reset_log()
    run = sync_in_process(
        config_for(stand_in, max_archive_bytes=len(posts) - 1), catalog=catalog
    )

    assert run.returncode == 1
    assert (
        "Export 032000000000101: its last run's file is over the max_archive_bytes "
        f"setting ({len(posts) - 1} bytes)"
    ) in run.stderr
    assert not [r for r in stand_in.downloads() if "032000000000101" in r.path]
    assert run.record_counts()["campaigns"] == 10  # the others load

"""A sync after discovery types each file from discovery's scan: no third reading.

In one process the scans are handed over in memory; across processes (Meltano's
discovery, then sync) they are kept in the archive's cache entry. Either way the
sync sends byte for byte what a sync scanning every file itself sends.
"""

from __future__ import annotations

import json
import logging
import random
import re
from typing import TYPE_CHECKING, Any

import pytest

from tap_oktopost.archives.cache import ArchiveCache, RunKey
from tap_oktopost.archives.download import ArchiveStore
from tap_oktopost.tables.column_types import TYPE_NAMES
from tap_oktopost.tables.csv_data import scan_member
from tap_oktopost.tables.names import SYNC_TIMESTAMP, column_names
from tap_oktopost.tap import TapOktopost
from tests.conftest import (
    config_for,
    csv_text,
    export_with,
    run_tap,
    sync_in_process,
)
from tests.in_process.test_catalog import cache_folder
from tests.unit.test_scan_reuse import HEADER_CELLS, generated_csv

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.conftest import TapRun
    from tests.stand_ins.oktopost_stand_in import OktopostStandIn

MEMBERS = ("posts.csv", "2026-11-27-posts.csv", "clicks.csv")
"""Two files of table posts, one of clicks, per export."""
REUSE_LOG = "typed from discovery's scan of the same bytes"


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the sync's own scans of files (discovery's are not counted)."""
    made: list[str] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append("scan")
        return scan_member(*args, **kwargs)

    monkeypatch.setattr("tap_oktopost.streams.scan_member", counted)
    return made


def add_generated_exports(stand_in: OktopostStandIn, seed: int) -> int:
    """Add two exports of generated files; give how many CSV files they hold."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    for number in (1, 2):
        members = {name: generated_csv(rng) for name in MEMBERS}
        stand_in.add_export(export_with(f"0320000000{seed:03d}{number:02d}", members))
    return 2 * len(MEMBERS)


def sync_settings(seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Give settings (typing policy, pins) and a state remembering names and types."""
    rng = random.Random(seed + 1000)  # noqa: S311 - reproducible test data
    names = column_names(list(dict.fromkeys(HEADER_CELLS)))
    pins = {name: rng.choice(TYPE_NAMES) for name in rng.sample(names, 2)}
    remembered = {name: rng.choice(TYPE_NAMES) for name in rng.sample(names, 3)}
    settings = {
        "column_typing": rng.choice(["keep", "widen", "text"]),
        "column_types": {"posts": pins},
    }
    state = {"bookmarks": {"posts": {"column_types": remembered}}}
    return settings, state


def output(run: TapRun) -> list[str]:
    """The RECORD and SCHEMA lines, the extraction time blanked (it is the clock's)."""
    lines = []
    for message in run.messages:
        if message["type"] == "RECORD":
            message.pop("time_extracted", None)
            if SYNC_TIMESTAMP in message["record"]:
                message["record"][SYNC_TIMESTAMP] = "(time)"
        if message["type"] in {"RECORD", "SCHEMA"}:
            lines.append(json.dumps(message, sort_keys=True))
    return lines


def without_reuse(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make discovery hand no scan over; give the undoing."""
    monkeypatch.setattr(ArchiveStore, "keep_scans", lambda *_: None)
    return monkeypatch.undo


@pytest.mark.parametrize("seed", range(6))
def test_one_process_reuses_discoverys_scans_and_sends_the_same_bytes(
    stand_in: OktopostStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scans: list[str],
    seed: int,
) -> None:
    files = add_generated_exports(stand_in, seed)
    settings, state = sync_settings(seed)
    reused = sync_in_process(
        config_for(stand_in, archive_cache_dir=str(tmp_path / "a"), **settings),
        state=state,
    )
    assert reused.returncode == 0, reused.stderr
    assert scans == []
    assert REUSE_LOG in reused.stderr

    undo = without_reuse(monkeypatch)
    own = sync_in_process(
        config_for(stand_in, archive_cache_dir=str(tmp_path / "b"), **settings),
        state=state,
    )
    undo()

    assert own.returncode == 0, own.stderr
    assert len(scans) == files
    assert REUSE_LOG not in own.stderr
    assert output(reused) == output(own)
    assert reused.record_counts()["posts"] > 0 or own.record_counts()["posts"] == 0


def discover(config: dict[str, Any]) -> dict[str, Any]:
    catalog: dict[str, Any] = TapOktopost(config=config).catalog_dict
    return catalog


@pytest.mark.parametrize("seed", range(6, 12))
def test_a_sync_after_discovery_in_another_process_reuses_the_cached_scans(
    stand_in: OktopostStandIn,
    tmp_path: Path,
    scans: list[str],
    seed: int,
) -> None:
    files = add_generated_exports(stand_in, seed)
    settings, state = sync_settings(seed)
    shared = config_for(stand_in, archive_cache_dir=str(tmp_path / "c"), **settings)
    catalog = discover(shared)
    records = list((tmp_path / "c").glob("*.json"))
    assert records
    assert all("scans" in json.loads(path.read_text()) for path in records)

    reused = sync_in_process(shared, state=state, catalog=catalog)
    assert reused.returncode == 0, reused.stderr
    assert scans == []
    assert REUSE_LOG in reused.stderr

    fresh = config_for(stand_in, archive_cache_dir=str(tmp_path / "d"), **settings)
    own = sync_in_process(fresh, state=state, catalog=catalog)
    assert own.returncode == 0, own.stderr
    assert len(scans) == files
    assert output(reused) == output(own)


def test_a_sampled_discovery_hands_no_scan_over(
    stand_in: OktopostStandIn, tmp_path: Path, scans: list[str]
) -> None:
    files = add_generated_exports(stand_in, 3)
    config = config_for(stand_in, whole_file_discovery_bytes=1)  # Range reads
    catalog = discover(config)
    run = sync_in_process(config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(scans) == files
    assert REUSE_LOG not in run.stderr
    for path in cache_folder(tmp_path).glob("*.json"):
        assert "scans" not in json.loads(path.read_text())


@pytest.mark.parametrize("damage", ["bytes", "record"])
def test_a_damaged_cache_entry_or_stored_scan_is_scanned_again(
    stand_in: OktopostStandIn, tmp_path: Path, scans: list[str], damage: str
) -> None:
    files = add_generated_exports(stand_in, 4)
    config = config_for(stand_in)
    catalog = discover(config)
    for path in cache_folder(tmp_path).glob("*.json"):
        record = json.loads(path.read_text())
        if damage == "bytes":
            path.with_suffix(".zip").write_bytes(b"PK damaged")
        else:  # scans of other rules, as an older or newer tap's
            for scan in record["scans"]["members"].values():
                scan["rules"] += 1
            path.write_text(json.dumps(record))
    run = sync_in_process(config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(scans) == files
    assert REUSE_LOG not in run.stderr


def test_a_stored_scan_is_dropped_with_its_entry_when_a_newer_run_comes(
    stand_in: OktopostStandIn, tmp_path: Path, scans: list[str]
) -> None:
    add_generated_exports(stand_in, 5)
    config = config_for(stand_in)
    catalog = discover(config)
    rng = random.Random(55)  # noqa: S311 - reproducible test data
    newer = {name: generated_csv(rng) for name in MEMBERS}
    stand_in.add_export(
        export_with("032000000000501", newer, run_date="2026-11-28 10:00:00")
    )
    run = sync_in_process(config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(scans) == len(MEMBERS)  # the newer run's, scanned; the other reused
    assert REUSE_LOG in run.stderr


@pytest.mark.slow
def test_meltanos_two_processes_type_each_file_from_discoverys_scan(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    files = add_generated_exports(stand_in, 13)
    settings, state = sync_settings(13)
    config = config_for(stand_in, archive_cache_dir=str(tmp_path / "c"), **settings)
    catalog = run_tap(config, tmp_path, discover=True).messages[0]
    reused = run_tap(config, tmp_path, catalog=catalog, state=state)
    fresh = config_for(stand_in, archive_cache_dir=str(tmp_path / "d"), **settings)
    own = run_tap(fresh, tmp_path, catalog=catalog, state=state)

    counts = [
        int(n) for n in re.findall(rf"'s (\d+) file\(s\) {REUSE_LOG}", reused.stderr)
    ]
    assert sum(counts) == files
    assert REUSE_LOG not in own.stderr
    assert output(reused) == output(own)


@pytest.mark.parametrize("seed", range(4))
def test_a_number_column_whose_other_file_holds_long_integers_is_sent_as_own_scan(
    stand_in: OktopostStandIn,
    tmp_path: Path,
    scans: list[str],
    seed: int,
) -> None:
    """The one place a scan from the catalog's type is not the widened scan."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    decimals = [["id", "amount"]] + [
        [str(n), f"{rng.randint(0, 999)}.{rng.randint(0, 99)}"] for n in range(50)
    ]
    longs = [["id", "amount"]] + [
        [str(n), str(rng.randint(10**15, 10**18))] for n in range(50)
    ]
    stand_in.add_export(
        export_with("032000000000701", {"posts.csv": csv_text(decimals)})
    )
    stand_in.add_export(export_with("032000000000702", {"posts.csv": csv_text(longs)}))
    shared = config_for(stand_in, archive_cache_dir=str(tmp_path / "c"))
    catalog = discover(shared)
    reused = sync_in_process(shared, catalog=catalog)
    assert scans == []
    own = sync_in_process(
        config_for(stand_in, archive_cache_dir=str(tmp_path / "d")), catalog=catalog
    )
    assert len(scans) == 2
    assert output(reused) == output(own)
    amounts = {r["amount"] for r in reused.records("posts")}
    assert {str(row[1]) for row in longs[1:]} <= amounts  # text, as written


def test_scans_are_kept_only_with_the_bytes_they_were_made_of(tmp_path: Path) -> None:
    """Another process may replace an entry between its copy and discovery's scan."""
    cache = ArchiveCache(tmp_path / "cache", 1024**2, logging.getLogger("cache"))
    key = RunKey("032000000000801", "2026-11-27T10:00:00+00:00", "posts.zip")
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    first.write_bytes(b"PK first run file")
    second.write_bytes(b"PK the same run, replaced")
    digest = cache.store(key, first, '"v1"')
    assert digest is not None
    assert cache.store(key, second, '"v2"') is not None

    cache.add_scans(key, digest, {"members": {}})  # made of the first bytes
    fetched = cache.fetch(key, tmp_path / "copy.zip")
    assert fetched is not None
    assert fetched.etag == '"v2"'
    assert fetched.scans is None

    cache.add_scans(key, fetched.sha256, {"members": {}})
    again = cache.fetch(key, tmp_path / "copy.zip")
    assert again is not None
    assert again.scans == {"members": {}}
    cache.store(key, first, '"v3"')  # new bytes: the record starts anew
    newest = cache.fetch(key, tmp_path / "copy.zip")
    assert newest is not None
    assert newest.scans is None


@pytest.mark.parametrize("bad", ["a;b,c\r\nx;y,z\r\n", "a\tb|c\r\n1\t2|3\r\n"])
def test_an_export_whose_file_failed_discovery_has_its_files_scanned_again(
    stand_in: OktopostStandIn, scans: list[str], bad: str
) -> None:
    rng = random.Random(7)  # noqa: S311 - reproducible test data
    good = {"posts.csv": generated_csv(rng)}
    stand_in.add_export(export_with("032000000000901", {**good, "bad.csv": bad}))
    stand_in.add_export(export_with("032000000000902", good))
    run = sync_in_process(config_for(stand_in))

    assert "cannot tell the CSV separator" in run.stderr
    assert f"export 032000000000902's 1 file(s) {REUSE_LOG}" in run.stderr
    assert "export 032000000000901's" not in run.stderr
    assert len(scans) == 1  # 901's posts.csv, read by the sync itself (bad: no table)

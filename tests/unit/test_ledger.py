"""The bookmark layout: read from any state, written only by the ledger."""

from __future__ import annotations

import copy
import io
import random
import re
from typing import Any

import pytest
from singer_sdk.helpers._state import get_writeable_state_dict

from tap_oktopost.sync.ledger import (
    EXPORTS_STREAM,
    ExportBookmark,
    RunLedger,
    StateLayoutError,
    checked_state,
    read_bookmarks,
    read_state_file,
)
from tap_oktopost.tap import TapOktopost

RUN_1, RUN_2 = "2026-11-27T10:00:00+00:00", "2026-11-28T10:00:00+00:00"


def state_of(*partitions: dict[str, Any]) -> dict[str, Any]:
    return {"bookmarks": {"active_export_metadata": {"partitions": list(partitions)}}}


@pytest.mark.parametrize(
    "state",
    [
        None,
        {},
        {"bookmarks": "x"},
        {"bookmarks": {"active_export_metadata": "x"}},
        {"bookmarks": {"active_export_metadata": {"partitions": "x"}}},
        state_of("x", {"context": "x"}, {"context": {}}),  # type: ignore[arg-type]
    ],
)
def test_a_state_of_any_shape_reads_without_a_crash(state: Any) -> None:
    assert read_bookmarks(state) == {}


def test_the_current_and_the_earlier_layout_read_alike() -> None:
    state = state_of(
        {"context": {"Id": "A"}, "run": RUN_1, "tables": {"posts": RUN_1}},
        {"context": {"Id": "B"}, "replication_key_value": RUN_1},
        {"context": {"Id": "C"}, "run": None, "tables": {"posts": RUN_2}},
    )
    assert read_bookmarks(state) == {
        "A": ExportBookmark(run=RUN_1, tables={"posts": RUN_1}),
        "B": ExportBookmark(run=RUN_1),
        "C": ExportBookmark(run=None, tables={"posts": RUN_2}),
    }


def test_what_a_bookmark_says_is_due() -> None:
    bookmark = ExportBookmark(run=RUN_1, tables={"posts": RUN_1, "stats": None})

    assert bookmark.tables_due(RUN_1, ["posts", "stats"], {"posts", "stats"}) == [
        "stats"
    ]
    assert bookmark.tables_due(RUN_1, ["posts", "stats"], {"posts"}) == []
    assert bookmark.tables_due(RUN_2, ["posts", "stats"], {"posts"}) == ["posts"]
    assert bookmark.needs_archive(RUN_1, {"stats"})
    assert not bookmark.needs_archive(RUN_1, {"posts"})
    assert bookmark.needs_archive(RUN_2, set())
    assert not bookmark.is_complete(RUN_1)
    assert ExportBookmark(run=RUN_1).is_complete(RUN_1)


@pytest.mark.parametrize("seed", range(6))
def test_every_export_tracked_has_its_partition_loaded_or_not(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - test data
    ids = [f"0320000000{n:05d}" for n in rng.sample(range(99_999), rng.randint(1, 6))]
    loaded = set(rng.sample(ids, rng.randint(0, len(ids))))
    partitions: dict[str, dict[str, Any]] = {}
    flushes: list[dict[str, Any]] = []

    def partition(export_id: str) -> dict[str, Any]:
        return partitions.setdefault(export_id, {"context": {"Id": export_id}})

    ledger = RunLedger(
        partition, lambda: flushes.append(state_of(*partitions.values())), None
    )
    for export_id in ids:
        ledger.track(export_id)
        if export_id in loaded:
            ledger.run_received(export_id, RUN_1, ["posts"], "f.zip")
        ledger.track(export_id)  # again: what was written stays

    bookmarks = read_bookmarks(state_of(*partitions.values()))
    assert sorted(bookmarks) == sorted(ids)
    for export_id in ids:
        assert bookmarks[export_id].run == (RUN_1 if export_id in loaded else None)
    assert len(flushes) == len(loaded)  # tracking alone sends no STATE


def test_the_ledger_writes_a_table_then_the_run_and_flushes_each_time() -> None:
    partitions: dict[str, dict[str, Any]] = {
        "A": {"context": {"Id": "A"}, "replication_key_value": RUN_1}
    }
    flushes: list[dict[str, Any]] = []

    def partition(export_id: str) -> dict[str, Any]:
        return partitions.setdefault(export_id, {"context": {"Id": export_id}})

    ledger = RunLedger(
        partition,
        lambda: flushes.append(state_of(*partitions.values())),
        state_of(*partitions.values()),
    )
    ledger.table_received("A", "posts", RUN_2)
    assert read_bookmarks(flushes[-1])["A"] == ExportBookmark(
        run=RUN_1, tables={"posts": RUN_2}
    )
    ledger.run_received("A", RUN_2, ["posts", "stats"])
    assert read_bookmarks(flushes[-1])["A"] == ExportBookmark(
        run=RUN_2, tables={"posts": RUN_2, "stats": None}, earlier={RUN_1: None}
    )
    assert "replication_key_value" not in partitions["A"]
    assert len(flushes) == 2


JSON_VALUES: list[Any] = [None, 0, 1.5, True, "x", [], {}, [{}], {"Id": "1"}]
OFFLINE = {"account_id": "a", "api_key": "k", "base_url": "http://127.0.0.1:9/v2"}


def valid_state() -> dict[str, Any]:
    return {
        "bookmarks": {
            EXPORTS_STREAM: {
                "progress_markers": {"Note": "n"},
                "partitions": [
                    {"context": {"Id": "1"}, "run": RUN_1, "tables": {"posts": RUN_1}},
                    {"context": {"Id": "2"}, "progress_markers": {}},
                ],
            },
            "export_list_metadata": {},
        }
    }


def layout_places(state: dict[str, Any]) -> list[tuple[str, list[Any], Any]]:
    """Every (place, path, kind) the Singer layout gives a type, in a state."""
    places: list[tuple[str, list[Any], Any]] = [("bookmarks", ["bookmarks"], dict)]
    for stream, stream_state in state["bookmarks"].items():
        at = ["bookmarks", stream]
        places.append((f"bookmarks.{stream}", at, dict))
        for key in ("progress_markers", "context"):
            if key in stream_state:
                places.append((f"bookmarks.{stream}.{key}", [*at, key], dict))
        if "partitions" in stream_state:
            places.append((f"bookmarks.{stream}.partitions", [*at, "partitions"], list))
        for number, partition in enumerate(stream_state.get("partitions", [])):
            where = f"bookmarks.{stream}.partitions[{number}]"
            path = [*at, "partitions", number]
            places.append((where, path, dict))
            places.extend(
                (f"{where}.{key}", [*path, key], dict)
                for key in ("progress_markers", "context")
                if key in partition
            )
    return places


def replaced(state: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(state)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return changed


def sdk_reads(state: dict[str, Any]) -> None:
    """What the SDK does with an input state before and during a sync."""
    tap = TapOktopost(config=OFFLINE, state=state, setup_mapper=False)
    tap._reset_state_progress_markers()  # private: the SDK's own first step
    get_writeable_state_dict(tap.state, EXPORTS_STREAM, {"Id": "1"})
    read_bookmarks(tap.state)


def test_every_misplaced_kind_is_refused_naming_its_place() -> None:
    state = valid_state()
    sdk_reads(checked_state(state))
    tried = 0
    for place, path, kind in layout_places(state):
        for value in JSON_VALUES:
            if isinstance(value, kind):
                continue
            with pytest.raises(
                StateLayoutError, match=f"^State: {re.escape(place)} is "
            ):
                checked_state(replaced(state, path, value))
            tried += 1
    assert tried > 50


def random_json(rng: random.Random, depth: int) -> Any:
    """A value shaped like a state more often than not, wrong somewhere at times."""
    if depth > 3 or rng.random() < 0.25:
        return rng.choice(JSON_VALUES)
    keys = ["bookmarks", EXPORTS_STREAM, "partitions", "context", "progress_markers"]
    if rng.random() < 0.3:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        rng.choice([*keys, "run", "Id"]): random_json(rng, depth + 1)
        for _ in range(rng.randint(0, 3))
    }


def test_any_state_either_is_refused_clearly_or_the_sdk_reads_it() -> None:
    rng = random.Random(11)  # noqa: S311 - reproducible test data
    refused = 0
    for _ in range(400):
        state = {"bookmarks": random_json(rng, 1)}
        try:
            checked_state(state)
        except StateLayoutError:
            refused += 1
            continue
        sdk_reads(state)
    assert 0 < refused < 400


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the --state file is not JSON"),
        ("{", "the --state file is not JSON"),
        ("[]", "the state is a list, not an object"),
        ('"state.json"', "the state is a string, not an object"),
        ('{"bookmarks": null}', "bookmarks is null, not an object"),
    ],
)
def test_a_state_file_that_is_no_state_is_refused(text: str, problem: str) -> None:
    with pytest.raises(StateLayoutError, match=f"^State: {problem}"):
        read_state_file(io.StringIO(text))
    assert read_state_file(io.StringIO('{"bookmarks": {}}')) == {"bookmarks": {}}

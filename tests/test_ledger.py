"""The bookmark layout: read from any state, written only by the ledger."""

from __future__ import annotations

from typing import Any

import pytest

from tap_oktopost.ledger import ExportBookmark, RunLedger, read_bookmarks

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
        run=RUN_2, tables={"posts": RUN_2, "stats": None}
    )
    assert "replication_key_value" not in partitions["A"]
    assert len(flushes) == 2

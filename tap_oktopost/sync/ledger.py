"""Which export runs each table has received: the tap's bookmarks, in one place.

Oktopost serves only an export's newest run, so a run is the unit of loading. The
state keeps one entry per export, a partition `{"Id": ...}` of the detail stream:

    {"context": {"Id": "032..."},
     "run": "2026-11-27T10:00:00+00:00",
     "file": "2026-11-27-Posts-Report.zip",
     "tables": {"posts": "2026-11-27T10:00:00+00:00", "campaigns": null},
     "earlier": {"2026-11-26T10:00:00+00:00": "2026-11-26-Posts-Report.zip"}}

`run` is the run whose detail record and selected tables all went out, `file` the
name of that run's file: a re-run that Oktopost dates like the run loaded comes in a
file of another name, and is loaded. `tables` maps every table of that run to the
run it last received (null: never, because it was deselected), so a table selected
later still gets the run. `earlier` keeps the runs loaded before, with their files,
so that loading a run dated like one of them can say which rows may mix. State
written by earlier versions (`replication_key_value` alone, or no `file`) reads as a
run every table received, from whatever file comes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from tap_oktopost.api.errors import OktopostError, printable

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

EXPORTS_STREAM = "active_export_metadata"
"""The stream whose state partitions hold the bookmarks."""
EARLIER_RUNS_KEPT = 50
"""Runs remembered per export besides the loaded one: weeks of daily runs."""


@dataclass
class ExportBookmark:
    """One export's bookmark: its loaded run, and the run each table received."""

    run: str | None = None
    tables: dict[str, str | None] = field(default_factory=dict)
    file: str | None = None
    earlier: dict[str, str | None] = field(default_factory=dict)

    def is_loaded_run(self, run_at: str, file: str | None) -> bool:
        """Say whether the run is the one loaded: same date, and no other file."""
        return self.run == run_at and (
            self.file is None or file is None or self.file == file
        )

    def tables_due(
        self,
        run_at: str,
        in_run: Iterable[str],
        selected: Collection[str],
        file: str | None = None,
    ) -> list[str]:
        """Give the selected tables of the run that have not received it.

        A table received the run only from the run's own file: a re-run dated like
        the loaded run, in another file, is due in every table.
        """
        received = (
            self.tables
            if self.run != run_at or self.is_loaded_run(run_at, file)
            else {}
        )
        return sorted(
            table
            for table in in_run
            if table in selected and received.get(table) != run_at
        )

    def is_complete(self, run_at: str, file: str | None = None) -> bool:
        """Say whether every table of the run received it."""
        return self.is_loaded_run(run_at, file) and all(
            received == run_at for received in self.tables.values()
        )

    def needs_archive(
        self, run_at: str, selected: Collection[str], file: str | None = None
    ) -> bool:
        """Say whether the run's archive holds anything still to send."""
        if not self.is_loaded_run(run_at, file):
            return True
        return bool(self.tables_due(run_at, self.tables, selected, file))

    def loaded_file(self, run_at: str) -> tuple[bool, str | None]:
        """Say whether a run of this date was loaded before, and from which file."""
        if self.run == run_at:
            return True, self.file
        if run_at in self.earlier:
            return True, self.earlier[run_at]
        return False, None


class StateLayoutError(OktopostError):
    """A state the SDK cannot read: refused before it fails deep inside the SDK."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"State: {problem}; fix it, or clear it (`meltano state clear <state id>`)"
            " to load every export's current run again"
        )


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"


def _layout_errors(state: object) -> Iterator[tuple[str, object, str]]:
    """Yield (place, value, expected) wherever the Singer state layout breaks."""
    if not isinstance(state, dict):
        yield "the state", state, "an object"
        return
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        yield "bookmarks", bookmarks, "an object"
        return
    for stream, stream_state in bookmarks.items():
        place = f"bookmarks.{printable(str(stream))}"
        if not isinstance(stream_state, dict):
            yield place, stream_state, "an object"
            continue
        partitions = stream_state.get("partitions", [])
        if not isinstance(partitions, list):
            yield f"{place}.partitions", partitions, "a list"
            continue
        for number, partition in enumerate([stream_state, *partitions]):
            where = place if number == 0 else f"{place}.partitions[{number - 1}]"
            if not isinstance(partition, dict):
                yield where, partition, "an object"
                continue
            for key in ("progress_markers", "context"):
                if not isinstance(partition.get(key, {}), dict):
                    yield f"{where}.{key}", partition[key], "an object"


def checked_state(state: object) -> dict[str, Any]:
    """Give back a state in the Singer layout the SDK reads, or refuse it.

    The SDK assumes the layout and fails deep inside with an AttributeError;
    this names the first place that breaks it.
    """
    for place, value, expected in _layout_errors(state):
        raise StateLayoutError(f"{place} is {_json_kind(value)}, not {expected}")
    return state  # type: ignore[return-value]  # _layout_errors saw a dict


def read_state_file(file: IO[str]) -> dict[str, Any]:
    """Read a `--state` file, refusing one that is not JSON or not a Singer state."""
    try:
        state = json.loads(file.read())
    except ValueError as error:
        raise StateLayoutError(f"the --state file is not JSON ({error})") from None
    return checked_state(state)


def read_bookmarks(state: Mapping[str, Any] | None) -> dict[str, ExportBookmark]:
    """Read every export's bookmark from a tap state; the one reader of the layout."""
    bookmarks = (state or {}).get("bookmarks")
    stream_state = bookmarks.get(EXPORTS_STREAM) if isinstance(bookmarks, dict) else {}
    partitions = (
        stream_state.get("partitions") if isinstance(stream_state, dict) else []
    )
    found = {}
    for partition in partitions if isinstance(partitions, list) else []:
        context = partition.get("context") if isinstance(partition, dict) else None
        if not isinstance(context, dict) or "Id" not in context:
            continue
        found[str(context["Id"])] = _bookmark_of(partition)
    return found


def _bookmark_of(partition: Mapping[str, Any]) -> ExportBookmark:
    if "run" in partition:
        tables = partition.get("tables")
        earlier = partition.get("earlier")
        file = partition.get("file")
        return ExportBookmark(
            run=partition["run"] or None,
            tables=dict(tables) if isinstance(tables, dict) else {},
            file=file if isinstance(file, str) else None,
            earlier=dict(earlier) if isinstance(earlier, dict) else {},
        )
    legacy = partition.get("replication_key_value")
    return ExportBookmark(run=str(legacy) if legacy else None)


class RunLedger:
    """Moves bookmarks only after the messages they vouch for are out.

    `partition` gives the writable state partition of an export, `flush` writes a
    STATE message when the state changed.
    """

    def __init__(
        self,
        partition: Callable[[str], dict[str, Any]],
        flush: Callable[[], None],
        initial: Mapping[str, Any] | None,
    ) -> None:
        self.partition = partition
        self.flush = flush
        self.bookmarks = read_bookmarks(initial)

    def bookmark(self, export_id: str) -> ExportBookmark:
        """Give an export's bookmark (empty for an export never loaded)."""
        return self.bookmarks.setdefault(export_id, ExportBookmark())

    def track(self, export_id: str) -> None:
        """Give an export its partition in the state, whether its run loads or not.

        So the state lists every export a sync tried, as an empty partition until a
        bookmark moves, whatever the SDK does with partitions it wrote nothing to
        (singer-sdk 0.54 leaves them empty; 0.55 leaves them out).
        """
        self.partition(export_id)

    def table_received(self, export_id: str, table: str, run_at: str) -> None:
        """Note that every row of a table in the run went out."""
        bookmark = self.bookmark(export_id)
        bookmark.tables[table] = run_at
        self._write(export_id, bookmark)

    def run_received(
        self,
        export_id: str,
        run_at: str,
        tables_in_run: Iterable[str],
        file: str | None = None,
    ) -> None:
        """Note that the run's detail record and every selected table went out."""
        bookmark = self.bookmark(export_id)
        if bookmark.run is not None and not bookmark.is_loaded_run(run_at, file):
            bookmark.earlier.pop(bookmark.run, None)
            bookmark.earlier[bookmark.run] = bookmark.file
            bookmark.earlier.pop(run_at, None)
            for old in list(bookmark.earlier)[:-EARLIER_RUNS_KEPT]:
                del bookmark.earlier[old]
        bookmark.run = run_at
        bookmark.file = file
        bookmark.tables = {
            table: run_at if bookmark.tables.get(table) == run_at else None
            for table in sorted(tables_in_run)
        }
        self._write(export_id, bookmark)

    def _write(self, export_id: str, bookmark: ExportBookmark) -> None:
        partition = self.partition(export_id)
        partition.pop("replication_key", None)
        partition.pop("replication_key_value", None)
        partition["run"] = bookmark.run
        partition["file"] = bookmark.file
        partition["tables"] = dict(bookmark.tables)
        partition["earlier"] = dict(bookmark.earlier)
        self.flush()

"""The export runs one sync loads, prepared before any CSV stream sends its SCHEMA.

Every archive to load is downloaded and every file due is read once for its types
before the first CSV row goes out, so the first SCHEMA of each table already fits
every value the sync sends. Archives live on local disk until their run is done.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tap_oktopost.api.errors import OktopostError, printable
from tap_oktopost.archives.download import NotCsvExportError

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Collection

    from tap_oktopost.api.exports import ExportRun
    from tap_oktopost.archives.download import ArchiveStore, ExportArchive
    from tap_oktopost.sync.ledger import ExportBookmark, RunLedger


@dataclass
class RunLoad:
    """One export run this sync sends: its detail, and the tables still due.

    `moves_bookmark` is False for a run whose tables were not looked at (the export
    never ran, or no CSV stream is selected): it stays due for the CSV streams.
    """

    run: ExportRun
    archive: ExportArchive | None = None
    tables_due: list[str] = field(default_factory=list)
    moves_bookmark: bool = True

    def members(self, table: str) -> list[str]:
        """Give the archive members of a table due in this run."""
        if self.archive is None or table not in self.tables_due:
            return []
        return list(self.archive.tables.get(table, []))


class SyncPlan:
    """The runs of one sync, the exports that failed, and the bookmarks they move."""

    def __init__(
        self,
        *,
        ledger: RunLedger,
        archives: ArchiveStore,
        fetch_run: Callable[[str], ExportRun],
        logger: logging.Logger,
    ) -> None:
        self.ledger = ledger
        self.archives = archives
        self.fetch_run = fetch_run
        self.logger = logger
        self.loads: dict[str, RunLoad] = {}
        self.failures: dict[str, str] = {}
        self.outcomes: dict[str, str] = {}
        """What the sync did with each export, for the summary at its end."""
        self.rows_sent: dict[str, dict[str, int]] = {}
        """Per export, the rows each table sent of its run, once all were out."""

    def prepare(
        self,
        export_ids: list[str],
        selected_tables: Collection[str],
        known_tables: Collection[str],
    ) -> None:
        """Fetch each export's detail and download the archives holding rows due.

        Every export's current run is looked at here, whatever discovery saw: a run
        is loaded only when each of its CSV files has a table in the catalog.
        """
        for export_id in export_ids:
            self.outcomes[export_id] = "nothing to load"
            try:
                load = self._prepare_export(export_id, selected_tables, known_tables)
            except OktopostError as error:
                self.fail(export_id, error)
                continue
            if load is not None:
                self.loads[export_id] = load
                self._fail_unknown_tables(load, known_tables)

    def _prepare_export(
        self,
        export_id: str,
        selected_tables: Collection[str],
        known_tables: Collection[str],
    ) -> RunLoad | None:
        run = self.fetch_run(export_id)
        if run.run_at is None:
            self.logger.info("Export %s has not run yet: no files", export_id)
            self.outcomes[export_id] = "has not run yet"
            return RunLoad(run, moves_bookmark=False)
        bookmark = self.ledger.bookmark(export_id)
        if not bookmark.needs_archive(run.run_at, selected_tables, run.file_name):
            self.logger.info("Export %s: run %s is loaded", export_id, run.run_at)
            self.outcomes[export_id] = f"run {run.run_at} was loaded before"
            return None
        if not selected_tables and known_tables:
            self.outcomes[export_id] = "no CSV stream is selected"
            return RunLoad(run, moves_bookmark=False)
        self._take_a_run_out_of_order(run, bookmark)
        try:
            archive = self.archives.archive(run)
        except NotCsvExportError as error:
            self.logger.warning("%s. Nothing to load from this run.", error)
            self.outcomes[export_id] = f"run {run.run_at} holds no CSV file"
            return RunLoad(run)
        due = bookmark.tables_due(
            run.run_at, archive.tables, selected_tables, run.file_name
        )
        return RunLoad(run, archive, due)

    def _take_a_run_out_of_order(
        self, run: ExportRun, bookmark: ExportBookmark
    ) -> None:
        """Say when a run comes dated before, or like, one already loaded.

        Oktopost may re-run a job: its rows load under the key the earlier file's
        rows have, so where the earlier file had more rows, or other files, those
        remain beside the new ones; their sync_timestamp tells them apart. What the
        tables received of a run of that date came from the earlier file: it is
        forgotten, so every table of the re-run is due.
        """
        assert run.run_at is not None  # noqa: S101
        if bookmark.is_loaded_run(run.run_at, run.file_name):
            return  # a table selected since asks for the run again
        if bookmark.run is not None and _instant(run.run_at) < _instant(bookmark.run):
            self.logger.warning(
                "Export %s: its run of %s is dated before the run already loaded "
                "(%s); loading it",
                run.export_id,
                run.run_at,
                bookmark.run,
            )
        loaded, earlier_file = bookmark.loaded_file(run.run_at)
        if loaded:
            self.logger.warning(
                "Export %s: a run dated %s was loaded before, from file %s; this "
                "run's file, %s, loads under the same key (export_id, "
                "_sdc_export_run_at, _sdc_source_file, _sdc_row_number). Rows of "
                "the earlier file that this one lacks remain in its tables: those "
                "of export_id %s and _sdc_export_run_at %s with a sync_timestamp "
                "before this sync's",
                run.export_id,
                run.run_at,
                printable(str(earlier_file or "of unknown name")),
                printable(str(run.file_name)),
                run.export_id,
                run.run_at,
            )
            bookmark.tables.clear()

    def _fail_unknown_tables(self, load: RunLoad, known: Collection[str]) -> None:
        """Fail a run whose files hold tables the catalog lacks: rows would be lost."""
        if load.archive is None:
            return
        if unknown := sorted(set(load.archive.tables) - set(known)):
            message = (
                f"Export {load.run.export_id}: its run of {load.run.run_at} has "
                f"files for tables the catalog lacks ({', '.join(unknown)}); the "
                "run stays unloaded. Discover again and the next sync loads them: "
                "under Meltano, `meltano run --refresh-catalog tap-oktopost <loader>` "
                "once, and `meltano config set tap-oktopost _use_cached_catalog "
                "false` so that every run discovers; without Meltano, a new catalog "
                "from `tap-oktopost --discover`"
            )
            self.fail(load.run.export_id, OktopostError(message), tables=())

    def fail(
        self,
        export_id: str,
        error: Exception,
        *,
        tables: Collection[str] | None = None,
    ) -> None:
        """Note that an export's run will not be loaded whole in this sync.

        `tables` are the ones that get nothing more (None: every table still due);
        the others still load and keep their own bookmarks.
        """
        self.logger.error("%s", error)
        self.failures.setdefault(export_id, str(error))
        load = self.loads.get(export_id)
        if load is not None:
            load.tables_due = (
                []
                if tables is None
                else [table for table in load.tables_due if table not in tables]
            )

    def finish(self, export_id: str) -> None:
        """Move the export's bookmark once its detail record and tables are out."""
        load = self.loads.pop(export_id, None)
        if load is None:
            return
        if load.archive is not None:
            self.archives.discard(export_id)
        if (
            load.moves_bookmark
            and load.run.run_at is not None
            and export_id not in self.failures
        ):
            tables = load.archive.tables if load.archive is not None else ()
            self.ledger.run_received(
                export_id, load.run.run_at, tables, load.run.file_name
            )
            if load.archive is not None:
                self.outcomes[export_id] = f"run {load.run.run_at} loaded"

    def summary(self) -> list[str]:
        """Say per export what this sync did: the run loaded and its rows, or why not.

        One line per export, so that each reads alone in Meltano's console and in
        its JSON logs.
        """
        lines = []
        for export_id, outcome in self.outcomes.items():
            said = (
                "failed (its ERROR is above), its bookmark stays"
                if export_id in self.failures
                else outcome
            )
            if sent := self.rows_sent.get(export_id):
                said += "; rows sent: " + ", ".join(
                    f"{table} {rows}" for table, rows in sorted(sent.items())
                )
            lines.append(f"Sync summary: export {export_id}: {said}")
        return lines

    def failure_summary(self) -> str:
        """Name every export that failed, for the sync's last line."""
        return (
            f"Exports failed ({len(self.failures)}), the others loaded: "
            f"{'; '.join(self.failures.values())}"
        )


def _instant(moment: str) -> datetime.datetime:
    """Read a bookmark's RFC 3339 date, to compare runs in time, not as text."""
    try:
        return datetime.datetime.fromisoformat(moment)
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)

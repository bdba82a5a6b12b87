"""The export runs one sync loads, prepared before any CSV stream sends its SCHEMA.

Every archive to load is downloaded and every file due is read once for its types
before the first CSV row goes out, so the first SCHEMA of each table already fits
every value the sync sends. Archives live on local disk until their run is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tap_oktopost.client import OktopostError
from tap_oktopost.download import NotCsvExportError, UnloadableExportError

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Collection

    from tap_oktopost.download import ArchiveStore, ExportArchive
    from tap_oktopost.exports import ExportRun
    from tap_oktopost.ledger import RunLedger


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

    def prepare(
        self,
        export_ids: list[str],
        selected_tables: Collection[str],
        known_tables: Collection[str],
    ) -> None:
        """Fetch each export's detail and download the archives holding rows due."""
        for export_id in export_ids:
            try:
                load = self._prepare_export(export_id, selected_tables)
            except OktopostError as error:
                self.fail(export_id, error)
                continue
            if load is not None:
                self.loads[export_id] = load
                self._warn_of_unknown_tables(load, known_tables)

    def _prepare_export(
        self, export_id: str, selected_tables: Collection[str]
    ) -> RunLoad | None:
        run = self.fetch_run(export_id)
        if run.run_at is None:
            self.logger.info("Export %s has not run yet: no files", export_id)
            return RunLoad(run, moves_bookmark=False)
        bookmark = self.ledger.bookmark(export_id)
        if not bookmark.needs_archive(run.run_at, selected_tables):
            self.logger.info("Export %s: run %s is loaded", export_id, run.run_at)
            return None
        if not selected_tables:
            return RunLoad(run, moves_bookmark=False)
        try:
            archive = self.archives.archive(run)
        except NotCsvExportError as error:
            self.logger.warning("%s. Nothing to load from this run.", error)
            return RunLoad(run)
        except UnloadableExportError as error:
            self.logger.warning("%s. The other exports still load.", error)
            return None
        due = bookmark.tables_due(run.run_at, archive.tables, selected_tables)
        return RunLoad(run, archive, due)

    def _warn_of_unknown_tables(self, load: RunLoad, known: Collection[str]) -> None:
        if load.archive is None:
            return
        if unknown := sorted(set(load.archive.tables) - set(known)):
            self.logger.warning(
                "Export %s: its run of %s has files for tables the catalog lacks "
                "(%s). Discover again (Meltano does so by default with "
                "use_cached_catalog: false) and the next sync loads them.",
                load.run.export_id,
                load.run.run_at,
                ", ".join(unknown),
            )

    def fail(self, export_id: str, error: Exception) -> None:
        """Note an export that failed; its tables still due get nothing more."""
        self.logger.error("%s", error)
        self.failures.setdefault(export_id, str(error))
        load = self.loads.get(export_id)
        if load is not None:
            load.tables_due = []

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
            self.ledger.run_received(export_id, load.run.run_at, tables)

    def failure_summary(self) -> str:
        """Name every export that failed, for the sync's last line."""
        return (
            f"Exports failed ({len(self.failures)}), the others loaded: "
            f"{'; '.join(self.failures.values())}"
        )

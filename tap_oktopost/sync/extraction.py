"""One owner for a sync: what every stream of one run of the tap shares.

An `Extraction` is built from the typed `Settings` and handed to each stream when
the stream is made; the streams ask it, never the tap, for the API client, the
export listing and ids, the archive store, the bookmarks, the plan of the runs to
load, the typing settings, the sync's timestamp and the writer of RECORD lines.
Everything is made on first need: `meltano config test` stops at the first record
of the export list, so a plan (which downloads archives) is made only when a CSV
stream or the detail stream first asks for it.

What belongs to the Singer SDK stays with the tap, which hands it over as plain
functions: a bookmark's place in the state, writing the state, the CSV streams of
the catalog, and registering a schema with the stream maps.
"""

from __future__ import annotations

import copy
import datetime
import functools
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from requests.auth import HTTPBasicAuth
from singer_sdk.exceptions import ConfigValidationError

from tap_oktopost.api.client import ExportListing, OktopostClient
from tap_oktopost.api.errors import OktopostError, printable
from tap_oktopost.api.retry import call_log_path
from tap_oktopost.archives.archive import member_error
from tap_oktopost.archives.cache import ArchiveCache, default_cache_dir
from tap_oktopost.archives.download import (
    ArchiveStore,
    ExportArchive,
    FileChangedError,
    NotCsvExportError,
)
from tap_oktopost.sdk_seams import BatchConfig
from tap_oktopost.sync.batches import prepare_root
from tap_oktopost.sync.ledger import COLUMN_TYPES_KEY, RunLedger, read_bookmarks
from tap_oktopost.sync.runs import SyncPlan
from tap_oktopost.tables.column_typing import TableShape, add_member_shape
from tap_oktopost.tables.csv_data import READ_ERRORS, MemberScan
from tap_oktopost.tables.names import EarlierNames

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Sequence

    from tap_oktopost.api.exports import ExportRun
    from tap_oktopost.sync.output import WholeMessageWriter
    from tap_oktopost.sync.settings import Settings

LISTING_FAILURE = "(listing of exports)"
"""The key of a listing cut short among a sync's failures: no export Id looks so."""


class Table(Protocol):
    """What the plan needs of a CSV stream: its name, and its schema to settle."""

    @property
    def name(self) -> str:
        """The stream's name, the table's."""
        ...

    @property
    def selected(self) -> bool:
        """Whether the catalog selects it."""
        ...

    def settle_schema(self, plan: SyncPlan) -> None:
        """Fix the stream's column types for the sync, before its first SCHEMA."""
        ...


class Extraction:
    """The client, archives, bookmarks, plan and settings of one sync."""

    def __init__(
        self,
        settings: Settings,
        *,
        logger: logging.Logger,
        writer: WholeMessageWriter,
        initial_state: dict[str, Any],
        bookmark_partition: Callable[[str], dict[str, Any]],
        write_state: Callable[[], None],
        tables: Callable[[], Sequence[Table]],
        register_schema: Callable[[str, dict[str, Any], Sequence[str]], None],
    ) -> None:
        self.settings = settings
        self.logger = logger
        self.writer = writer
        self.initial_state = initial_state
        self._bookmark_partition = bookmark_partition
        self._write_state = write_state
        self._tables = tables
        self.register_schema = register_schema
        """Give the stream maps a stream's settled schema, for its SCHEMA messages."""
        self._plan: SyncPlan | None = None

    @cached_property
    def client(self) -> OktopostClient:
        """The API client, made on first use: discovery may run before any call."""
        settings = self.settings
        return OktopostClient(
            settings.base_url,
            HTTPBasicAuth(settings.account_id, settings.api_key),
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            rate_limit_wait=settings.rate_limit_wait,
            logger=self.logger,
            call_log=call_log_path(settings.base_url, settings.account_id),
        )

    @cached_property
    def archives(self) -> ArchiveStore:
        """Every archive this process downloads, shared by discovery and sync.

        An expired link is replaced by the client's `export_run`: the one place a
        read of an archive's file can call the API.
        """
        settings = self.settings
        return ArchiveStore(
            self.client.export_run,
            max_uncompressed_bytes=settings.max_uncompressed_bytes,
            max_archive_bytes=settings.max_archive_bytes,
            max_disk_bytes=settings.max_disk_bytes,
            cache=ArchiveCache(
                Path(settings.archive_cache_dir or default_cache_dir()),
                settings.archive_cache_bytes,
                self.logger,
            ),
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            rate_limit_wait=settings.rate_limit_wait,
            logger=self.logger,
        )

    @cached_property
    def sync_timestamp(self) -> str:
        """One extraction time for every record of this run."""
        return datetime.datetime.now(datetime.timezone.utc).isoformat()

    @cached_property
    def ledger(self) -> RunLedger:
        """The bookmarks: read from the input state, written as STATE messages."""
        return RunLedger(
            partition=self._bookmark_partition,
            flush=self._write_state,
            initial=self.initial_state,
        )

    @cached_property
    def export_listing(self) -> ExportListing:
        """Every export of the account, listed once a process for every stream.

        A listing cut short is logged at ERROR here (at discovery as at a sync);
        a sync also ends non-zero for it, once the exports listed have loaded.
        """
        listing = self.client.list_exports()
        if listing.incomplete is not None:
            self.logger.error("%s", listing_cut_short(listing))
        return listing

    @cached_property
    def export_ids(self) -> list[str]:
        """The exports to load: those configured, else every active one."""
        if self.settings.configured_exports:
            return list(self.settings.configured_exports)
        active = [
            str(export.get("Id"))
            for export in self.export_listing.exports
            if str(export.get("Status", "active")).lower() == "active"
        ]
        for odd in [
            export_id for export_id in active if printable(export_id) != export_id
        ]:
            # It would forge log lines and state keys: no Oktopost Id looks like it.
            self.logger.warning(
                "Skipping an export whose Id %s is not text", printable(odd)
            )
        return [export_id for export_id in active if printable(export_id) == export_id]

    @property
    def plan(self) -> SyncPlan:
        """The runs this sync loads, downloaded and typed before any CSV SCHEMA."""
        if self._plan is None:
            self._plan = self._prepare_plan()
        return self._plan

    def _prepare_plan(self) -> SyncPlan:
        if raw_batch_config := self.settings.batch_config:
            removed = prepare_root(
                BatchConfig.from_dict(dict(raw_batch_config)), self.logger
            )
            if removed:
                self.logger.info("Deleted %d BATCH files of earlier syncs", removed)
        plan = SyncPlan(
            ledger=self.ledger,
            archives=self.archives,
            fetch_run=self.client.export_run,
            logger=self.logger,
        )
        tables = self._tables()
        selected = [table for table in tables if table.selected]
        plan.prepare(
            self.export_ids,
            selected_tables={table.name for table in selected},
            known_tables={table.name for table in tables},
        )
        self._fail_sync_for_listing(plan)
        for table in selected:
            table.settle_schema(plan)
        return plan

    def _fail_sync_for_listing(self, plan: SyncPlan) -> None:
        """Make a listing cut short a failure the sync's end reports, if one was made.

        An export the listing missed is not loaded, and its run may be lost.
        """
        listing: ExportListing | None = self.__dict__.get("export_listing")
        if listing is not None and listing.incomplete is not None:
            plan.failures.setdefault(LISTING_FAILURE, listing_cut_short(listing))

    def discover_tables(self) -> list[tuple[str, dict[str, Any], list[str]]]:
        """Read each export's archive: headers name columns, rows type them.

        Gives each table's name, schema and key. An export discovery cannot read
        is left out with a warning; a sync with that catalog fails it alone.
        """
        shapes: dict[str, TableShape] = {}
        bookmarks = read_bookmarks(self.initial_state)
        earlier = self._names_in_state()
        for export_id in self.export_ids:
            try:
                run = self.client.export_run(export_id)
                if run.run_at is None:
                    self.logger.info("Export %s has not run yet: no files", export_id)
                    continue
                if export_id in bookmarks and bookmarks[export_id].is_complete(
                    run.run_at, run.file_name
                ):
                    continue  # a sync given this state has nothing of it to load
                self._add_run_shapes(run, shapes, earlier)
            except NotCsvExportError as error:
                self.logger.warning("%s. It has no table to discover.", error)
            except OktopostError as error:
                self.logger.warning(
                    "Discovery leaves export %s out of the catalog: %s. A sync with "
                    "this catalog fails that export, loading the others, until a "
                    "discovery reads it",
                    export_id,
                    error,
                )
        tables = []
        for name, shape in sorted(shapes.items()):
            schema = shape.json_schema(
                self.settings.pinned_types(name), self.settings.column_typing
            )
            keys = self.settings.primary_keys_of(name)
            if missing := [key for key in keys if key not in schema["properties"]]:
                message = (
                    f"Setting primary_keys: stream {name} has no column "
                    f"{', '.join(missing)}"
                )
                raise ConfigValidationError(message, errors=[message])
            tables.append((name, schema, keys))
        return tables

    def _add_run_shapes(
        self,
        run: ExportRun,
        shapes: dict[str, TableShape],
        earlier: dict[str, EarlierNames],
    ) -> None:
        """Add the columns and sample types of one run's CSV files.

        A file replaced in storage while read remotely is read again from scratch
        (a bounded number of times) and only what one version holds is added, so a
        catalog never holds columns of two versions of one file.
        """
        attempt, ranged = 0, True
        while True:
            attempt += 1
            trial = copy.deepcopy(shapes)  # columns are few: a cheap copy
            changed: FileChangedError | None = None
            whole_up_to = self.settings.whole_file_discovery_bytes
            archive = self.archives.archive(
                run, headers_only=ranged, whole_up_to=whole_up_to
            )
            # Past the setting, a file is sampled even when it came whole.
            whole = (
                archive.path is not None and archive.path.stat().st_size <= whole_up_to
            )
            try:
                self._add_shapes(archive, trial, earlier, whole=whole)
            except FileChangedError as error:
                changed = error
            finally:
                if archive.path is None:
                    archive.delete()
                if changed is None:  # what was read before another failure counts
                    shapes.update(trial)
            if changed is None:
                return
            if attempt > self.archives.max_retries:
                raise changed
            ranged = not changed.whole
            self.logger.warning(
                "%s: reading it again from its start (%d of %d)",
                changed,
                attempt,
                self.archives.max_retries,
            )

    def _names_in_state(self) -> dict[str, EarlierNames]:
        """Give each table's column names the state remembers types of."""
        bookmarks = (self.initial_state or {}).get("bookmarks") or {}
        return {
            table: EarlierNames(in_state=frozenset(bookmark[COLUMN_TYPES_KEY]))
            for table, bookmark in bookmarks.items()
            if isinstance(bookmark, dict)
            and isinstance(bookmark.get(COLUMN_TYPES_KEY), dict)
        }

    def _add_shapes(
        self,
        archive: ExportArchive,
        shapes: dict[str, TableShape],
        earlier: dict[str, EarlierNames],
        *,
        whole: bool,
    ) -> None:
        """Add the columns and types of an archive's CSV files, read whole or not.

        When every file was read, the whole files' scans go to the sync
        (`ArchiveStore.keep_scans`), which then reads each once, for its records.
        """
        scans: dict[str, MemberScan] = {}
        for name, members in archive.tables.items():
            for member in members:
                try:
                    scan = add_member_shape(
                        functools.partial(archive.open_member, member),
                        whole=whole,
                        table=name,
                        shapes=shapes,
                        earlier=earlier.get(name),
                    )
                except FileChangedError:
                    raise
                except (*READ_ERRORS, OktopostError) as error:
                    failure = member_error(archive, member, error, "at discovery")
                else:
                    if scan is not None:
                        scans[member] = scan
                    continue
                raise failure  # out of the handler: no chained error to print
        if scans:  # every file read: a sync reading none would fail where it did
            self.archives.keep_scans(archive, scans)


def listing_cut_short(listing: ExportListing) -> str:
    """Say that the listing stopped early, why, and what the tap does about it."""
    return (
        f"Listing exports was cut short: {listing.incomplete}. The "
        f"{len(listing.exports)} exports listed still load, and the sync ends with "
        "an error: an export not listed is not loaded, and its run may be lost"
    )

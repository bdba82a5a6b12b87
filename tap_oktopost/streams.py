"""Stream classes: the export list, each active export's detail, and its CSV files."""

from __future__ import annotations

import copy
import datetime
import functools
from typing import TYPE_CHECKING, Any

from singer_sdk import Stream, metrics
from singer_sdk import typing as th
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_oktopost.api.errors import OktopostError, printable
from tap_oktopost.api.exports import SAFE_DESTINATION_FIELDS, metadata_record
from tap_oktopost.archives.archive import member_error
from tap_oktopost.sync.batches import BatchFiles
from tap_oktopost.sync.ledger import COLUMN_TYPES_KEY, EXPORTS_STREAM
from tap_oktopost.sync.output import RecordLines
from tap_oktopost.sync.progress import QuietCounter, QuietTimer, TableProgress
from tap_oktopost.tables.column_types import (
    ColumnType,
    column_type_of,
    property_schema,
)
from tap_oktopost.tables.column_typing import (
    KEEP,
    TEXT,
    TableShape,
    settle_types,
    type_changes,
)
from tap_oktopost.tables.csv_data import (
    METADATA_PROPERTIES,
    READ_ERRORS,
    CsvSource,
    MemberScan,
    RecordBuilder,
    rescan,
    scan_member,
)
from tap_oktopost.tables.names import (
    EXPORT_ID,
    EXPORT_RUN_AT,
    SOURCE_FILE,
    SYNC_TIMESTAMP,
    UNFIT_VALUES,
    EarlierNames,
    superseded,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib import Catalog

    from tap_oktopost.archives.download import ExportArchive
    from tap_oktopost.sdk_seams import BaseBatchFileEncoding, BatchConfig
    from tap_oktopost.sync.extraction import Extraction
    from tap_oktopost.sync.runs import RunLoad, SyncPlan

_DECLARED_TYPES: dict[type, th.JSONTypeHelper[Any]] = {
    str: th.StringType(),
    int: th.IntegerType(),
    list: th.ArrayType(th.StringType()),
}
_DESTINATION = th.ObjectType(
    *(
        th.Property(name, _DECLARED_TYPES[kind])
        for name, kind in SAFE_DESTINATION_FIELDS.items()
    )
)
_EXPORT_PROPERTIES = (
    th.Property("Id", th.StringType, required=True, description="Export Id"),
    th.Property("DestinationType", th.StringType),
    th.Property("Destination", _DESTINATION, description="Credentials removed"),
    th.Property("Type", th.StringType),
    th.Property("Frequency", th.StringType),
    th.Property("TimeRange", th.StringType),
    th.Property("Status", th.StringType),
)
_SYNC_TIMESTAMP = th.Property(
    SYNC_TIMESTAMP, th.DateTimeType, description="When the tap extracted the record"
)


TYPE_SCAN = "read for its types before any row went out"
"""Where a file that breaks while a sync reads it for its types broke off."""


class OktopostStream(Stream):
    """A stream of one sync, reading through the sync's owner (`Extraction`).

    The tap is handed to the SDK's `Stream` only: everything the tap's streams
    share (client, archives, bookmarks, plan) comes from `extraction`.
    """

    def __init__(
        self,
        tap: Tap,
        extraction: Extraction,
        name: str | None = None,
        schema: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(tap, schema=schema, name=name)
        self.extraction = extraction

    def get_batch_config(self, config: Mapping[str, Any]) -> BatchConfig | None:
        """Send RECORDs, whatever `batch_config` says: metadata streams are small.

        And the SDK's batching would write a detail record's file only after its
        export's bookmark had moved.
        """
        return None


class ExportListStream(OktopostStream):
    """Every BI export of the account, active or not."""

    name = "export_list_metadata"
    primary_keys = ("Id",)
    schema = th.PropertiesList(*_EXPORT_PROPERTIES, _SYNC_TIMESTAMP).to_dict()

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """List every export, without destination credentials.

        The listing is the sync's, shared with `Extraction.export_ids`: each page
        is asked for once a process.
        """
        for export in self.extraction.export_listing.exports:
            record = metadata_record(export)
            record[SYNC_TIMESTAMP] = self.extraction.sync_timestamp
            yield record


class ActiveExportStream(OktopostStream):
    """The detail of each export to load, and the parent of its CSV file streams.

    Its state partitions (`{"Id": ...}`) hold the bookmarks, written by the ledger
    only: see `tap_oktopost.ledger`.
    """

    name = EXPORTS_STREAM
    primary_keys = ("Id",)
    schema = th.PropertiesList(
        *_EXPORT_PROPERTIES,
        th.Property("LastRunDate", th.DateTimeType, description="Last run, UTC"),
        th.Property("LastRunFile", th.StringType, description="File name of last run"),
        _SYNC_TIMESTAMP,
    ).to_dict()

    def apply_catalog(self, catalog: Catalog) -> None:
        """Keep the SDK from moving bookmarks: a catalog may name a replication key.

        Catalogs of earlier versions say LastRunDate; the SDK would then advance the
        bookmark after each detail record, even for a run whose rows failed.
        """
        super().apply_catalog(catalog)
        self.replication_key = None
        self.forced_replication_method = None

    @property
    def partitions(self) -> list[dict[str, Any]]:
        """One partition per export to load, so each export keeps its own bookmark."""
        return [{"Id": export_id} for export_id in self.extraction.export_ids]

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Describe each run being loaded; its bookmark moves once all of it is out.

        The SDK syncs the CSV streams for a record before writing the record, so when
        this generator resumes, the run's rows and its detail are out.
        """
        plan = self.extraction.plan
        export_id = context["Id"] if context else None
        if export_id:
            plan.ledger.track(export_id)
        load = plan.loads.get(export_id) if export_id else None
        if load is not None:
            record = copy.deepcopy(load.run.record)
            record[SYNC_TIMESTAMP] = self.extraction.sync_timestamp
            yield record
            plan.finish(load.run.export_id)
        if not context or context == self.partitions[-1]:
            self._conclude(plan)

    def _conclude(self, plan: SyncPlan) -> None:
        """Say per export what went out; exit 1 if an export failed.

        Runs once every export's rows are out. Each failure was logged as it
        happened and the other exports loaded: the exit is non-zero so that an
        orchestrator reports the runs left unloaded, without a traceback
        (SystemExit passes the SDK's handler of unexpected errors).
        """
        for line in plan.summary():
            self.logger.info("%s", line)
        if plan.failures:
            self.logger.error("%s", plan.failure_summary())
            raise SystemExit(1)

    def generate_child_contexts(
        self,
        record: dict[str, Any],
        context: Context | None,
    ) -> Iterable[Context | None]:
        """Hand the run to the CSV streams when some of its tables are due."""
        load = self.extraction.plan.loads.get(record["Id"])
        if load is not None and load.tables_due:
            yield {EXPORT_ID: load.run.export_id, EXPORT_RUN_AT: load.run.run_at}


class ExportFileStream(OktopostStream):
    """One CSV file name across the active exports' archives, as one table.

    Values are parsed here into JSON-native values matching the schema, so the SDK's
    type conformance is skipped. The column types are settled for the whole sync
    before the first SCHEMA: see `settle_schema`.
    """

    parent_stream_type = ActiveExportStream
    state_partitioning_keys = ()
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(
        self,
        tap: Tap,
        extraction: Extraction,
        name: str,
        schema: dict[str, Any],
        primary_keys: Sequence[str],
    ) -> None:
        super().__init__(tap, extraction, schema=schema, name=name)
        self.primary_keys = primary_keys
        self._record_counter: metrics.Counter | None = None
        self._scans: dict[tuple[str, str], MemberScan] = {}
        """What each file's scan found, by export and member, for reading it."""
        self._proven: dict[tuple[str, str], frozenset[str]] = {}
        """Per file, the columns the scan found every value of to fit its type."""

    def get_batch_config(self, config: Mapping[str, Any]) -> BatchConfig | None:
        """BATCH files when `batch_config` is set: see `get_batches`."""
        return Stream.get_batch_config(self, config)

    @property
    def emit_activate_version_messages(self) -> bool:
        """Never: a version covers one run, and targets would delete the others."""
        return False

    def settle_schema(self, plan: SyncPlan) -> None:
        """Read every file due once for its types; fix the schema for the sync.

        Runs before the stream's first SCHEMA, so no column changes type within a
        sync. A file that cannot be read fails its export only.
        """
        remembered = self.stream_state.get(COLUMN_TYPES_KEY, {})
        pinned = self.extraction.settings.pinned_types(self.name)
        policy = self.extraction.settings.column_typing
        properties = self.effective_schema["properties"]
        declared = self._column_types()
        earlier = EarlierNames.of_table(properties, remembered)
        # Columns whose type the values cannot change are not scanned, and the
        # others start from the catalog's type: a text column costs nothing.
        fixed = {
            **(dict.fromkeys(declared, ColumnType.STRING) if policy == TEXT else {}),
            **{
                n: ColumnType(t)
                for n, t in (remembered if policy == KEEP else {}).items()
            },
            **{n: ColumnType(t) for n, t in pinned.items()},
        }
        files = TableShape()
        widened_by: dict[str, str] = {}
        for load in list(plan.loads.values()):
            archive = load.archive
            scans: dict[str, MemberScan] = {}
            members = load.members(self.name)
            if reused := [m for m in members if archive and m in archive.scans]:
                self.logger.info(
                    "Stream %s: export %s's %d file(s) typed from discovery's scan "
                    "of the same bytes, not read again for it",
                    self.name,
                    load.run.export_id,
                    len(reused),
                )
            for member in members:
                assert archive is not None  # noqa: S101
                try:
                    made = archive.scans.get(member)  # discovery's, of these bytes
                    scan = (
                        rescan(made, declared, fixed, earlier)
                        if made is not None
                        else scan_member(
                            functools.partial(archive.open_member, member),
                            start_types=declared,
                            pinned=fixed,
                            earlier=earlier,
                        )
                    )
                except (*READ_ERRORS, OktopostError) as error:
                    failure = member_error(archive, member, error, TYPE_SCAN)
                    plan.fail(load.run.export_id, failure)
                    break
                if missing := self._missing_key_columns(scan):
                    plan.fail(
                        load.run.export_id,
                        self._missing_keys_error(load, member, missing),
                        tables=[self.name],
                    )
                    break
                scans[member] = scan
            if self.name not in load.tables_due:
                continue  # its export, or this table of it, failed
            for member, scan in scans.items():
                self._scans[load.run.export_id, member] = scan
                files.add_typed(scan.header, scan.names, scan.types, scan.float_kept)
                for name, found in zip(scan.names, scan.types, strict=True):
                    if name not in fixed and found is not declared.get(name, found):
                        widened_by.setdefault(name, load.run.export_id)
        headers = {name: cell for name, (_, cell) in files.columns.items()}
        stale = superseded(earlier.texts, headers)
        settled = settle_types(
            declared={n: t for n, t in declared.items() if n not in stale},
            scanned={name: found for name, (found, _) in files.columns.items()},
            remembered=remembered,
            pinned=pinned,
            policy=policy,
        )
        for change in type_changes(self.name, declared, settled, widened_by):
            self.logger.warning("%s", change)
        for key, scan in self._scans.items():
            self._proven[key] = frozenset(
                name
                for name, found in zip(scan.names, scan.types, strict=True)
                if name not in fixed and settled.get(name) is found
            )
        new_properties = copy.deepcopy(METADATA_PROPERTIES)
        for name, column_type in settled.items():
            description = properties.get(name, {}).get("description", headers.get(name))
            new_properties[name] = property_schema(column_type, description or name)
        self._use_properties(new_properties)

    def _missing_key_columns(self, scan: MemberScan) -> list[str]:
        """Give the key columns a file lacks: its rows would go out without a key."""
        return [
            key
            for key in self.primary_keys or ()
            if key not in METADATA_PROPERTIES and key not in scan.names
        ]

    def _missing_keys_error(
        self, load: RunLoad, member: str, missing: list[str]
    ) -> OktopostError:
        return OktopostError(
            f"Setting primary_keys: table {self.name} is keyed by "
            f"{', '.join(self.primary_keys or ())}, but export "
            f"{load.run.export_id}'s file {printable(member)} has no column "
            f"{', '.join(missing)}; that table of the export is not loaded and its "
            "bookmark stays. Give the table a key its files all have, or fix the "
            "export"
        )

    def _column_types(self) -> dict[str, ColumnType]:
        """Give the CSV columns' types in the stream's schema, metadata aside."""
        return {
            name: column_type_of(column)
            for name, column in self.effective_schema["properties"].items()
            if name not in METADATA_PROPERTIES
        }

    def _use_properties(self, properties: dict[str, Any]) -> None:
        """Give the stream its schema for this sync: the one seam for schema changes.

        The SCHEMA messages the SDK writes come from the stream maps, built from the
        catalog when the tap started: they are built again here from the new schema,
        keeping only the selected columns, as the SDK does from a catalog.
        """
        for schema in {id(s): s for s in (self.schema, self.effective_schema)}.values():
            schema["properties"] = copy.deepcopy(properties)
        selected = {
            name: column
            for name, column in properties.items()
            if self.mask[("properties", name)]
        }
        self.extraction.register_schema(
            self.name,
            {**self.effective_schema, "properties": selected},
            self.primary_keys,
        )

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Read this table's files of the run, row by row; then move its bookmark.

        Records that need none of the SDK's per-record work are written here in
        batches (see `tap_oktopost.output`); the others are yielded to the SDK.
        """
        plan = self.extraction.plan
        load = self._due_load(context)
        if load is None or load.archive is None:
            return
        progress = self._progress(load)
        lines = self._lean_writer(progress)
        try:
            for member in load.members(self.name):
                records = self._read_member(load.archive, member)
                if lines is None:
                    yield from _counted(records, progress)
                else:
                    self._write_lean(lines, records)
        except OktopostError as error:
            plan.fail(load.run.export_id, error)
            return
        self._table_done(load, progress.rows)

    def _progress(self, load: RunLoad) -> TableProgress:
        return TableProgress(
            self.logger, self.name, load.run.export_id, self._record_counter
        )

    def _due_load(self, context: Context | None) -> RunLoad | None:
        """Give the run the parent stream handed over, if this sync loads it."""
        return self.extraction.plan.loads.get(context[EXPORT_ID]) if context else None

    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Write this table's rows of the run to files; then move its bookmark.

        The records are those `get_records` sends, encoded as they are read. The
        SDK writes each file's BATCH message when given the file, so when the last
        `yield` returns, every file of the run is out and the bookmark may move.
        """
        plan = self.extraction.plan
        load = self._due_load(context)
        if load is None or load.archive is None:
            return
        files = BatchFiles(batch_config, self.name)
        reshape = self._batch_reshape()
        archive = load.archive
        records = (
            record
            for member in load.members(self.name)
            for record in self._read_member(archive, member)
        )
        counter = self.get_record_counter()
        counter.with_context(context)
        progress = self._progress(load)
        try:
            with counter:
                for url, rows in files.write(
                    records if reshape is None else reshape(records)
                ):
                    progress.sent(rows)
                    yield batch_config.encoding, [url]
        except OktopostError as error:
            plan.fail(load.run.export_id, error)
            return
        self._table_done(load, progress.rows)

    def _batch_reshape(
        self,
    ) -> Callable[[Iterable[dict[str, Any]]], Iterator[dict[str, Any]]] | None:
        """Apply the stream map and column selection to batched records, if any.

        The SDK's own batching skips both; a BATCH message names one set of files
        for every alias, so a map that splits a stream cannot be honoured.
        """
        if self._is_lean():
            return None
        if len(self.stream_maps) != 1:
            msg = (
                f"Stream {self.name}: batch_config cannot send a stream under "
                "several names (a stream map aliasing it); send RECORDs instead"
            )
            raise OktopostError(msg)
        stream_map = self.stream_maps[0]
        mask = self.mask

        def reshape(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for record in records:
                selected = {n: v for n, v in record.items() if mask["properties", n]}
                mapped = stream_map.transform(selected)
                if mapped is not None:
                    yield mapped

        return reshape

    def _table_done(self, load: RunLoad, rows: int) -> None:
        """Every row of the table in the run is out: remember types, move bookmark.

        Only for a table the run still has due: once its export failed, none is
        (its later tables read nothing, and a bookmark would skip their rows).
        """
        if self.name not in load.tables_due:
            return
        plan = self.extraction.plan
        plan.rows_sent.setdefault(load.run.export_id, {})[self.name] = rows
        self.stream_state[COLUMN_TYPES_KEY] = {
            name: column_type.value
            for name, column_type in self._column_types().items()
        }
        assert load.run.run_at is not None  # noqa: S101
        plan.ledger.table_received(load.run.export_id, self.name, load.run.run_at)

    def _write_lean(
        self, lines: RecordLines, records: Iterable[dict[str, Any]]
    ) -> None:
        add = lines.add
        try:
            for record in records:
                add(record)
        finally:
            lines.flush()

    def get_record_counter(self, **kwargs: Any) -> metrics.Counter:
        """Keep the SDK's counter, to count the records written in batches too.

        A table the export run being synced has no rows of counts quietly.
        """
        counter = super().get_record_counter(**kwargs)
        self._record_counter = (
            counter if self._sends_rows() else QuietCounter.like(counter)
        )
        return self._record_counter

    def get_sync_timer(self) -> metrics.Timer:
        """Time quietly a sync of a table the export run has no rows of."""
        timer = super().get_sync_timer()
        return timer if self._sends_rows() else QuietTimer.like(timer)

    def _sends_rows(self) -> bool:
        """Say whether the export run being synced has rows of this table due."""
        load = self._due_load(self.context)
        return load is not None and bool(load.members(self.name))

    def _is_lean(self) -> bool:
        """Whether records would pass through the SDK unchanged.

        That is: no stream map, flattening, deselected column, `post_process` or
        record limit.
        """
        stream_map = self.stream_maps[0]
        return not (
            len(self.stream_maps) != 1
            or not isinstance(stream_map, SameRecordTransform)
            or stream_map.flattening_enabled
            or self.ABORT_AT_RECORD_COUNT is not None
            or type(self).post_process is not Stream.post_process
            or not all(
                self.mask[("properties", name)]
                for name in self.effective_schema["properties"]
            )
        )

    def _lean_writer(self, progress: TableProgress) -> RecordLines | None:
        """Give a writer of RECORD lines when no per-record SDK feature is in use."""
        if not self._is_lean() or self.get_batch_config(self.config) is not None:
            return None
        now = datetime.datetime.now(datetime.timezone.utc)
        return RecordLines(
            self.extraction.writer,
            self.stream_maps[0].stream_alias,
            now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            progress.sent,
        )

    def _read_member(
        self, archive: ExportArchive, member: str
    ) -> Iterator[dict[str, Any]]:
        """Read a file with the decoding and columns its scan found."""
        scan = self._scans.pop((archive.run.export_id, member))
        proven = self._proven.pop((archive.run.export_id, member))
        properties = self.effective_schema["properties"]
        unfit = UnfitValues(self, member)
        builder = RecordBuilder(
            scan.names,
            [column_type_of(properties[name]) for name in scan.names],
            {
                EXPORT_ID: archive.run.export_id,
                SYNC_TIMESTAMP: self.extraction.sync_timestamp,
                SOURCE_FILE: member,
                EXPORT_RUN_AT: archive.run.run_at,
            },
            on_unfit=unfit.note,
            proven=proven,
            header=scan.header,
        )
        delivered = 0
        failure = None
        try:
            with archive.open_member(member) as binary:
                source = CsvSource(binary, decoding=scan.decoding)
                source.header()
                for record in builder.records(source.rows):
                    yield record
                    delivered += 1
        except (*READ_ERRORS, OktopostError) as error:
            failure = member_error(
                archive, member, error, f"after data row {delivered}"
            )
        if failure is not None:
            raise failure  # out of the handler: no chained error to print
        unfit.summarise()
        if repairs := source.repairs() + builder.repairs():
            self.logger.warning(
                "Export %s, file %s: %s",
                archive.run.export_id,
                printable(member),
                "; ".join(repairs),
            )


PROGRESS_EVERY_RECORDS = 10_000
"""Records yielded to the SDK between two looks at the progress clock."""


def _counted(
    records: Iterable[dict[str, Any]], progress: TableProgress
) -> Iterator[dict[str, Any]]:
    """Yield records to the SDK, which counts them, telling `progress` as they go."""
    pending = 0
    for record in records:
        yield record
        pending += 1
        if pending == PROGRESS_EVERY_RECORDS:
            progress.sent(pending, counted=True)
            pending = 0
    progress.sent(pending, counted=True)


class UnfitValues:
    """Warns of values kept out of their typed column: once per column and file."""

    def __init__(self, stream: ExportFileStream, member: str) -> None:
        self.stream = stream
        self.member = member
        self.counts: dict[str, int] = {}

    def note(self, column: str, row_number: int, value: str) -> None:
        """Count an unfit value; the first of a column is named with its row."""
        self.counts[column] = self.counts.get(column, 0) + 1
        if self.counts[column] > 1:
            return
        stream = self.stream
        column_type = column_type_of(stream.effective_schema["properties"][column])
        if column in stream.extraction.settings.pinned_types(stream.name):
            advice = "as the column_types setting pins it"
        else:
            advice = (
                "the type its table has had since an earlier sync. To widen the "
                f'column for good, set column_types {{"{stream.name}": {{"{column}": '
                '"string"}} and alter the column in the warehouse'
            )
        stream.logger.warning(
            "Stream %s, file %s, row %d: column %s holds %r, which does not fit its "
            "type, %s, %s; the row's %s is null and the text is kept in %s.",
            stream.name,
            self.member,
            row_number,
            column,
            value[:80],
            column_type.value,
            advice,
            column,
            UNFIT_VALUES,
        )

    def summarise(self) -> None:
        """Say how many values of each column did not fit, once the file is read."""
        if self.counts:
            self.stream.logger.warning(
                "Stream %s, file %s: values kept in %s: %s",
                self.stream.name,
                self.member,
                UNFIT_VALUES,
                ", ".join(f"{n} of column {c}" for c, n in sorted(self.counts.items())),
            )

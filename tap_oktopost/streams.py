"""Stream classes: the export list, each active export's detail, and its CSV files."""

from __future__ import annotations

import copy
import datetime
from typing import TYPE_CHECKING, Any

from singer_sdk import Stream, metrics
from singer_sdk import typing as th
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_oktopost.client import OktopostError
from tap_oktopost.csv_data import (
    CONVERTERS,
    EXPORT_ID,
    EXPORT_RUN_AT,
    EXTRA_VALUES,
    METADATA_PROPERTIES,
    READ_ERRORS,
    ROW_NUMBER,
    SOURCE_FILE,
    SYNC_TIMESTAMP,
    UNFIT_VALUES,
    ColumnType,
    CsvSource,
    classify,
    column_names,
    column_type_of,
    property_schema,
    widen,
)
from tap_oktopost.download import NotCsvExportError, UnloadableExportError
from tap_oktopost.exports import without_secrets
from tap_oktopost.output import RecordLines

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from singer_sdk.helpers.types import Context

    from tap_oktopost.download import ExportArchive
    from tap_oktopost.exports import ExportRun
    from tap_oktopost.tap import TapOktopost

_DESTINATION = th.ObjectType(
    th.Property("Email", th.StringType),
    th.Property("FirstName", th.StringType),
    th.Property("LastName", th.StringType),
    th.Property("Username", th.StringType),
    th.Property("Host", th.StringType),
    th.Property("BucketName", th.StringType),
    th.Property("Path", th.StringType),
    th.Property("AccountName", th.StringType),
    th.Property("Container", th.StringType),
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


def loaded_runs(state: dict[str, Any]) -> dict[str, str]:
    """Read each export's bookmark (its last fully delivered run) from a tap state."""
    partitions = (
        state.get("bookmarks", {})
        .get(ActiveExportStream.name, {})
        .get("partitions", [])
    )
    return {
        str(partition["context"]["Id"]): str(partition["replication_key_value"])
        for partition in partitions
        if partition.get("replication_key_value")
        and "Id" in partition.get("context", {})
    }


def _parsed_columns(
    converters: list[Callable[[str], Any]],
) -> list[tuple[int, Callable[[str], Any]]]:
    """Pick the columns whose values need parsing: text costs no call per value."""
    return [
        (position, convert)
        for position, convert in enumerate(converters)
        if convert is not CONVERTERS[ColumnType.STRING]
    ]


COLUMN_TYPES_KEY = "column_types"
"""Where a CSV stream's state keeps its columns' types between syncs."""


class OktopostStream(Stream):
    """A stream reading through the tap's shared API client and archive store."""

    def __init__(
        self,
        tap: TapOktopost,
        name: str | None = None,
        schema: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(tap, schema=schema, name=name)
        self.oktopost = tap


class ExportListStream(OktopostStream):
    """Every BI export of the account, active or not."""

    name = "export_list_metadata"
    primary_keys = ("Id",)
    schema = th.PropertiesList(*_EXPORT_PROPERTIES, _SYNC_TIMESTAMP).to_dict()

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """List every export, without destination credentials."""
        for export in self.oktopost.client.list_exports():
            record = without_secrets(export)
            record[SYNC_TIMESTAMP] = self.oktopost.sync_timestamp
            yield record


class ActiveExportStream(OktopostStream):
    """The detail of each export to load, and the parent of its CSV file streams.

    State holds one bookmark per export (partition `{"Id": ...}`): the LastRunDate of
    the last run whose rows were all delivered. Only the newest run can be downloaded,
    so a run is marked loaded only after every selected CSV stream has emitted it.
    """

    name = "active_export_metadata"
    primary_keys = ("Id",)
    replication_key = "LastRunDate"
    is_sorted = True
    check_sorted = False
    schema = th.PropertiesList(
        *_EXPORT_PROPERTIES,
        th.Property("LastRunDate", th.DateTimeType, description="Last run, UTC"),
        th.Property("LastRunFile", th.StringType, description="File name of last run"),
        _SYNC_TIMESTAMP,
    ).to_dict()

    @property
    def partitions(self) -> list[dict[str, Any]]:
        """One partition per export to load, so each export keeps its own bookmark."""
        return [{"Id": export_id} for export_id in self.oktopost.export_ids]

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Describe the export, unless its last run was loaded already.

        An export that fails does not stop the others: only its newest run can be
        downloaded, so each export left unloaded today may lose a run. The sync fails
        after the last export, naming every export that failed.
        """
        export_id = context["Id"] if context else ""
        try:
            run = self.oktopost.export_run(export_id)
        except OktopostError as error:
            self.oktopost.record_failure(export_id, error)
        else:
            if run.run_at is None or run.run_at != self.loaded_run(context):
                record = copy.deepcopy(run.record)
                record[SYNC_TIMESTAMP] = self.oktopost.sync_timestamp
                yield record
            else:
                self.logger.info("Export %s: run %s is loaded", export_id, run.run_at)
        failures = self.oktopost.failures
        if context == self.partitions[-1] and failures:
            message = (
                f"{len(failures)} export(s) failed: {'; '.join(failures.values())}"
            )
            raise OktopostError(message)

    def loaded_run(self, context: Context | None) -> str | None:
        """Give the LastRunDate of the export's last fully delivered run."""
        value = self.get_context_state(context).get("replication_key_value")
        return str(value) if value else None

    def generate_child_contexts(
        self,
        record: dict[str, Any],
        context: Context | None,
    ) -> Iterable[Context | None]:
        """Hand the run to the CSV streams, then mark it loaded once they are done."""
        run = self.oktopost.runs[record["Id"]]
        if run.run_at is None:
            self.logger.info("Export %s has not run yet", run.export_id)
            return
        if not any(child.selected for child in self.child_streams):
            return
        if not self._download(run, run.run_at, context):
            return
        try:
            yield {EXPORT_ID: run.export_id, EXPORT_RUN_AT: run.run_at}
            unknown = self._tables_missing_from_catalog(run.export_id)
        finally:
            self.oktopost.archives.discard(run.export_id)
        if run.export_id in self.oktopost.failures:
            return
        if unknown:
            self.logger.warning(
                "Export %s: its run of %s has files for tables the catalog lacks (%s). "
                "The run stays unloaded; discover again (Meltano does so by default "
                "with use_cached_catalog: false) and the next sync loads it.",
                run.export_id,
                run.run_at,
                ", ".join(unknown),
            )
            return
        self._mark_loaded(context, run.run_at)

    def _download(self, run: ExportRun, run_at: str, context: Context | None) -> bool:
        """Fetch the run's archive for the CSV streams; False when there is none."""
        try:
            self.oktopost.archives.archive(run)
        except NotCsvExportError as error:
            self.logger.warning("%s. Nothing to load from this run.", error)
            self._mark_loaded(context, run_at)
        except UnloadableExportError as error:
            self.logger.warning("%s. The other exports still load.", error)
        except OktopostError as error:
            self.oktopost.record_failure(run.export_id, error)
        else:
            return True
        return False

    def _tables_missing_from_catalog(self, export_id: str) -> list[str]:
        """Name the tables of a downloaded archive that no CSV stream reads."""
        archive = self.oktopost.archives.held(export_id)
        if archive is None:
            return []
        known = {child.name for child in self.child_streams}
        return sorted(set(archive.tables) - known)

    def _mark_loaded(self, context: Context | None, run_at: str) -> None:
        state = self.get_context_state(context)
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = run_at
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _increment_stream_state(
        self, latest_record: dict[str, Any], *, context: Context | None = None
    ) -> None:
        """Leave bookmarks to `_mark_loaded`.

        The SDK would move the bookmark whenever this stream is selected, even when no
        CSV row of the run was delivered.
        """


class ExportFileStream(OktopostStream):
    """One CSV file name across the active exports' archives, as one table.

    Values are parsed here into JSON-native values matching the schema, so the SDK's
    type conformance is skipped. A value that does not fit its column's type widens
    the column, and a new SCHEMA message goes out before that record.
    """

    parent_stream_type = ActiveExportStream
    state_partitioning_keys = ()
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(
        self,
        tap: TapOktopost,
        name: str,
        schema: dict[str, Any],
        primary_keys: Sequence[str],
    ) -> None:
        super().__init__(tap, schema=schema, name=name)
        self.primary_keys = primary_keys
        self._lines: RecordLines | None = None
        self._types_settled = False
        self._record_counter: metrics.Counter | None = None

    @property
    def emit_activate_version_messages(self) -> bool:
        """Never: a version covers one run, and targets would delete the others."""
        return False

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Read this table's members of the export's archive, row by row.

        Records that need none of the SDK's per-record work are written here, in
        batches; the others are yielded to the SDK.
        """
        archive = self.oktopost.archives.held(context[EXPORT_ID]) if context else None
        if archive is None:
            return
        self._lines = self._lean_writer()
        try:
            for member in archive.tables.get(self.name, []):
                records = self._read_member(archive, member)
                if self._lines is None:
                    yield from records
                else:
                    add = self._lines.add
                    written = 0
                    for written, record in enumerate(records, start=1):  # noqa: B007
                        add(record)
                    self._lines.flush()
                    if self._record_counter is not None:
                        self._record_counter.increment(written)
        except OktopostError as error:
            self.oktopost.record_failure(archive.run.export_id, error)
        finally:
            if self._lines is not None:
                self._lines.flush()
                self._lines = None

    def get_record_counter(self, **kwargs: Any) -> metrics.Counter:
        """Keep the SDK's counter, to count the records written in batches too."""
        self._record_counter = super().get_record_counter(**kwargs)
        return self._record_counter

    def _lean_writer(self) -> RecordLines | None:
        """Give a batch writer when records need no mask, map or flattening."""
        if self.ABORT_AT_RECORD_COUNT is not None or len(self.stream_maps) != 1:
            return None
        stream_map = self.stream_maps[0]
        if (
            not isinstance(stream_map, SameRecordTransform)
            or stream_map.flattening_enabled
            or not all(
                self.mask[("properties", name)] for name in self.schema["properties"]
            )
        ):
            return None
        now = datetime.datetime.now(datetime.timezone.utc)
        return RecordLines(
            stream_map.stream_alias, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        )

    def _read_member(
        self, archive: ExportArchive, member: str
    ) -> Iterable[dict[str, Any]]:
        with archive.open_member(member) as binary:
            source = CsvSource(binary)
            delivered = 0
            try:
                for record in self._records(archive.run, member, source.rows):
                    yield record
                    delivered += 1
            except READ_ERRORS as error:
                message = (
                    f"Export {archive.run.export_id}, file {member}, after data row "
                    f"{delivered}: {type(error).__name__}: {error}"
                )
                raise OktopostError(message) from None
            self._remember_types()
            if repairs := source.repairs():
                self.logger.warning(
                    "Export %s, file %s: %s",
                    archive.run.export_id,
                    member,
                    "; ".join(repairs),
                )

    def _records(
        self, run: ExportRun, member: str, rows: Iterator[list[str]]
    ) -> Iterator[dict[str, Any]]:
        """Turn CSV rows into records: the per-row path, kept lean."""
        header = next((row for row in rows if row), None)
        if header is None:
            return
        names = column_names(header)
        properties = self.schema["properties"]
        for name, cell in zip(names, header, strict=True):
            if name not in properties:
                self._set_property(name, property_schema(ColumnType.NULL, cell))
        converters = [CONVERTERS[column_type_of(properties[n])] for n in names]
        typed = _parsed_columns(converters)
        blank = dict.fromkeys(names)
        blank.update(
            {
                EXPORT_ID: run.export_id,
                SYNC_TIMESTAMP: self.oktopost.sync_timestamp,
                SOURCE_FILE: member,
                EXPORT_RUN_AT: run.run_at,
                EXTRA_VALUES: None,
                UNFIT_VALUES: None,
            }
        )
        width = len(names)
        row_number = 0
        for row in rows:
            if not row:
                continue
            row_number += 1
            record = blank.copy()
            record[ROW_NUMBER] = row_number
            values = [value or None for value in row]
            try:
                for position, convert in typed:
                    value = values[position]
                    if value is not None:
                        values[position] = convert(value)
            except (ValueError, IndexError):  # a value to widen for, or a short row
                values = self._convert_widening(converters, names, row, member)
                typed = _parsed_columns(converters)
            record.update(zip(names, values, strict=False))
            if len(row) > width:
                record[EXTRA_VALUES] = row[width:]
            yield record

    def _convert_widening(
        self,
        converters: list[Callable[[str], Any]],
        names: list[str],
        row: list[str],
        member: str,
    ) -> list[Any]:
        """Convert a row some value of which does not fit its column's type."""
        values: list[Any] = []
        for position, (name, value) in enumerate(zip(names, row, strict=False)):
            if not value:
                values.append(None)
                continue
            try:
                values.append(converters[position](value))
            except ValueError:
                converters[position] = self._widen(name, value, member)
                values.append(converters[position](value))
        return values

    def _widen(self, name: str, value: str, member: str) -> Callable[[str], Any]:
        old_schema = self.schema["properties"][name]
        old_type = column_type_of(old_schema)
        new_type = widen(old_type, classify(value))
        self.logger.warning(
            "Stream %s, file %s: column %s holds a %s value, so its type widens from "
            "%s to %s. A target that cannot change a column's type (such as "
            "MeltanoLabs target-postgres) refuses this or narrows the value: pin the "
            'column with the column_types setting, e.g. {"%s": {"%s": "%s"}}.',
            self.name,
            member,
            name,
            classify(value).value,
            old_type.value,
            new_type.value,
            self.name,
            name,
            new_type.value,
        )
        self._set_property(
            name, property_schema(new_type, old_schema.get("description", name))
        )
        if self._lines is not None:
            self._lines.flush()
        self._write_schema_message()
        self._remember_types()
        return CONVERTERS[new_type]

    def preprocess_context(self, context: Context) -> Context:
        """Before this stream's first SCHEMA message, settle its column types.

        A type pinned by the column_types setting wins; else the type this table's
        columns had in earlier syncs (kept in state), so that a run whose sample
        types a column differently (all empty, say) changes nothing at the target.
        """
        if not self._types_settled:
            remembered = self.stream_state.get(COLUMN_TYPES_KEY, {})
            pinned = self.oktopost.pinned_types(self.name)
            for name, type_name in {**remembered, **pinned}.items():
                column = self.schema["properties"].get(name)
                if column is not None and column_type_of(column).value != type_name:
                    description = column.get("description", name)
                    self._set_property(
                        name, property_schema(ColumnType(type_name), description)
                    )
            self._types_settled = True
        return context

    def _remember_types(self) -> None:
        """Keep the columns' types in state, for the next sync to start from."""
        remembered = self.stream_state.setdefault(COLUMN_TYPES_KEY, {})
        for name, column in self.schema["properties"].items():
            if name not in METADATA_PROPERTIES:
                remembered[name] = column_type_of(column).value

    def _set_property(self, name: str, new_schema: dict[str, Any]) -> None:
        """Change a column's schema everywhere SCHEMA messages are built from.

        Stream maps hold their own copies; a column a map passes through unchanged is
        changed there too, one a map computes is left to the map.
        """
        old_schema = self.schema["properties"].get(name)
        targets = [self.schema]
        if self._input_schema is not None and self._input_schema is not self.schema:
            targets.append(self._input_schema)
        for stream_map in self.stream_maps:
            targets.append(stream_map.raw_schema)
            mapped = stream_map.transformed_schema.get("properties", {})
            if mapped.get(name) == old_schema and (
                name in mapped or isinstance(stream_map, SameRecordTransform)
            ):
                targets.append(stream_map.transformed_schema)
        for target in targets:
            target.setdefault("properties", {})[name] = copy.deepcopy(new_schema)

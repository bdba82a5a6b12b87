"""The Oktopost tap: settings, and the streams found in the account's exports."""

from __future__ import annotations

import contextlib
import copy
import datetime
import difflib
import io
import itertools
import json
import signal
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import click
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities, TapCapabilities
from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.plugin_base import JSONSchemaValidator
from singer_sdk.tap_base import CliTestOptionValue

from tap_oktopost.api.client import ExportListing, OktopostClient
from tap_oktopost.api.errors import OktopostError, printable
from tap_oktopost.api.exports import ExportRun
from tap_oktopost.api.retry import retry_settings
from tap_oktopost.api.transport import EU_BASE_URL, US_BASE_URL, base_url_problem
from tap_oktopost.archives.archive import DEFAULT_MAX_UNCOMPRESSED_BYTES
from tap_oktopost.archives.download import (
    DEFAULT_MAX_ARCHIVE_BYTES,
    DEFAULT_MAX_DISK_BYTES,
    ArchiveStore,
    ExportArchive,
    FileChangedError,
    NotCsvExportError,
)
from tap_oktopost.sdk_seams import BatchConfig, SeamedTap
from tap_oktopost.streams import (
    COLUMN_TYPES_KEY,
    ActiveExportStream,
    ExportFileStream,
    ExportListStream,
    OktopostStream,
    member_error,
)
from tap_oktopost.sync.batches import prepare_root
from tap_oktopost.sync.ledger import (
    EXPORTS_STREAM,
    RunLedger,
    checked_state,
    read_bookmarks,
    read_state_file,
)
from tap_oktopost.sync.output import WholeMessageWriter
from tap_oktopost.sync.runs import SyncPlan
from tap_oktopost.tables.column_types import TYPE_NAMES
from tap_oktopost.tables.csv_data import (
    DEFAULT_KEY,
    DEFAULT_MAX_FIELD_CHARACTERS,
    FIELD_LIMIT_SETTING,
    READ_ERRORS,
    CsvSource,
    TableShape,
    limit_field_size,
)
from tap_oktopost.tables.names import SOURCE_FILE, EarlierNames, case_clashes
from tap_oktopost.tables.type_policy import KEEP, TYPING_POLICIES

if TYPE_CHECKING:
    from types import FrameType

    from singer_sdk import Stream
    from singer_sdk.helpers.capabilities import CapabilitiesEnum

BATCH_CONFIG = "batch_config"
"""The SDK's setting for BATCH messages, which the CSV streams honour."""
SAMPLE_ROWS = 2000
"""Rows per CSV file read at discovery for the catalog's types; a sync reads all."""
SAMPLE_BUFFER_BYTES = 16 * 1024
"""Small reads, so that discovery fetches little more of a remote file than it uses."""


class TapOktopost(SeamedTap):
    """Extracts Oktopost BI exports: their metadata and every CSV file they hold."""

    name = "tap-oktopost"
    dynamic_catalog = True  # discovery calls the API, so it validates settings too
    # Not ACTIVATE_VERSION: a CSV table holds many runs, and a version message from
    # one would make targets delete the others. BATCH: the CSV streams write JSON-lines
    # files (tap_oktopost.batches) and a table's bookmark moves after its last BATCH
    # message; the metadata streams stay RECORDs.
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        PluginCapabilities.ABOUT,
        PluginCapabilities.BATCH,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    config_jsonschema = th.PropertiesList(
        th.Property(
            "account_id",
            th.StringType(min_length=1),
            required=True,
            title="Account ID",
            description="Oktopost Account ID (Settings > API), the Basic auth user",
        ),
        th.Property(
            "api_key",
            th.StringType(min_length=1),
            required=True,
            secret=True,
            title="API Key",
            description="Oktopost API key, the Basic auth password",
        ),
        th.Property(
            "base_url",
            th.StringType(pattern=r"^https?://[^\s/?#]+[^\s?#]*$"),
            default=US_BASE_URL,
            title="API Base URL",
            description=f"Oktopost API root: {US_BASE_URL} (US) or {EU_BASE_URL} (EU)",
        ),
        th.Property(
            "export_ids",
            th.ArrayType(th.StringType(min_length=1)),
            title="Export IDs",
            description="Load only these exports, active or not (default: all active)",
        ),
        th.Property(
            "test_export_id",
            th.StringType(min_length=1),
            title="Test Export ID",
            description="One export to load, as in older Oktopost connector configs",
        ),
        th.Property(
            "primary_keys",
            th.ObjectType(additional_properties=th.ArrayType(th.StringType)),
            title="Primary Keys",
            description=(
                "Stream name -> column names replacing a CSV stream's default key "
                f"({', '.join(DEFAULT_KEY)})"
            ),
        ),
        th.Property(
            "column_types",
            th.ObjectType(
                additional_properties=th.ObjectType(
                    additional_properties=th.StringType(allowed_values=TYPE_NAMES)
                )
            ),
            title="Column Types",
            description=(
                "Stream name -> column name -> one of "
                f"{', '.join(TYPE_NAMES)}: the column's type, whatever its values; "
                "a value that does not fit it goes to _sdc_unfit_values as text"
            ),
        ),
        th.Property(
            "column_typing",
            th.StringType(allowed_values=TYPING_POLICIES),
            default=KEEP,
            title="Column Typing",
            description=(
                "What a CSV column's type does when a later value does not fit it: "
                "keep (the column keeps the type its table has; the value goes to "
                "_sdc_unfit_values as text), widen (the column's type widens, for "
                "targets that alter columns), or text (every CSV column is text)"
            ),
        ),
        th.Property(
            "request_timeout",
            th.NumberType(minimum=1),
            default=300,
            title="Request Timeout",
            description=(
                "Seconds an API call or a Range read may take as a whole (connect, "
                "headers, body), and a download may go without bringing 1 MiB"
            ),
        ),
        th.Property(
            "max_retries",
            th.IntegerType(minimum=0),
            default=5,
            title="Max Retries",
            description="Retries of a call failing with 429, 5xx or a network error",
        ),
        th.Property(
            "rate_limit_wait_seconds",
            th.NumberType(minimum=0),
            default=900,
            title="Rate Limit Wait",
            description=(
                "Seconds to wait after HTTP 429 without Retry-After: Oktopost locks "
                "a key that goes over its rate limit for about 15 minutes"
            ),
        ),
        th.Property(
            FIELD_LIMIT_SETTING,
            th.IntegerType(minimum=1),
            default=DEFAULT_MAX_FIELD_CHARACTERS,
            title="Max CSV Field Characters",
            description=(
                "Longest CSV field, and line, the tap reads; a file with a longer one "
                "fails its export with an error naming the file"
            ),
        ),
        th.Property(
            "max_uncompressed_bytes",
            th.IntegerType(minimum=1),
            default=DEFAULT_MAX_UNCOMPRESSED_BYTES,
            title="Max Uncompressed Bytes",
            description=(
                "Largest export archive, uncompressed, the tap will read: counted "
                "on the bytes actually inflated, whatever the archive claims"
            ),
        ),
        th.Property(
            "max_archive_bytes",
            th.IntegerType(minimum=1),
            default=DEFAULT_MAX_ARCHIVE_BYTES,
            title="Max Archive Bytes",
            description=(
                "Largest export archive, as downloaded, the tap will write to disk: "
                "a download stops there"
            ),
        ),
        th.Property(
            "max_disk_bytes",
            th.IntegerType(minimum=1),
            default=DEFAULT_MAX_DISK_BYTES,
            title="Max Disk Bytes",
            description=(
                "Most disk the archives held at once may take: a sync holds each "
                "archive with rows due until its export is loaded. An export whose "
                "archive would pass it fails (its bookmark stays); the others load"
            ),
        ),
    ).to_dict()

    def __init__(self, *, state: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Keep the input state: discovery runs before the SDK loads it."""
        if isinstance(state, dict):
            state = checked_state(state)
        self.initial_state = state if isinstance(state, dict) else {}
        self._sync_plan: SyncPlan | None = None
        self.writer = WholeMessageWriter()
        super().__init__(state=state, message_writer=self.writer, **kwargs)
        self._warn_of_unknown_settings()

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, Any]) -> None:
        """Add the SDK's settings, `batch_config` under the tap's own label.

        The generated plugin definition, meltano.yml and the README's settings
        table quote the label, which the SDK rewords between releases.
        """
        super().append_builtin_config(config_jsonschema)
        properties = config_jsonschema.get("properties", {})
        if BATCH_CONFIG in properties:  # a copy: the SDK's own schema is shared
            properties[BATCH_CONFIG] = {
                **properties[BATCH_CONFIG],
                "title": "Batch Configuration",
                "description": "Configuration for BATCH message capabilities.",
            }

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """Make `--help` say what `--test` does in this tap (see `cb_test`)."""
        command = super().get_singer_command()
        for option in command.params:
            if isinstance(option, click.Option) and option.name == "test":
                option.help = (
                    "Use --test to check the settings and credentials with one API "
                    "call (GET /me). Use --test=schema to print every stream's "
                    "schema without syncing records."
                )
        return command

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """Make `--test` one cheap call (`GET /me`), not a sync of every stream."""
        if value != CliTestOptionValue.All.value:
            super().cb_test(ctx, param, value)
            return
        config_input = ctx.params["config"]
        try:
            tap = cls(
                config=config_input.config,
                parse_env_config=config_input.parse_env,
                setup_mapper=False,
            )
        except ConfigValidationError as error:
            cls.logger.error("Config validation error: %s", "; ".join(error.errors))
            ctx.exit(1)
        failure: OktopostError | None = None
        try:
            user = tap.client.check_credentials()
        except OktopostError as error:
            failure = error
        if failure is not None:
            tap.logger.error("%s", failure)
            ctx.exit(1)
        tap.logger.info(
            "Oktopost accepted the credentials of account %s (user %s)",
            tap.config["account_id"],
            user.get("Name") or user.get("Id") or "unnamed",
        )
        ctx.exit()

    @classmethod
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        """Make a discovery the tap cannot do end in one ERROR line, as a sync does.

        The SDK discovers while it parses the command line, before `invoke`.
        """
        failure: OktopostError | None = None
        try:
            super().cb_discover(ctx, param, value)
        except OktopostError as error:
            failure = error
        if failure is not None:
            cls.logger.error("%s", failure)
            ctx.exit(1)

    def validate_settings(self, *, raise_errors: bool) -> list[str]:
        """Validate the settings with messages that never quote a value.

        The SDK's messages quote the value refused (`12345 is not of type
        'string'`), which for api_key is the key itself, and for base_url may be a
        password; these name the setting and the rule instead.
        """
        schema = copy.deepcopy(self.config_jsonschema)
        self.append_builtin_config(schema)
        errors = config_errors(dict(self.config), schema)
        if errors and raise_errors:
            raise ConfigValidationError(
                "Config validation failed", errors=errors, schema=schema
            )
        for error in errors:
            self.logger.warning("Config validation error: %s", error)
        return errors

    def on_termination_signal(self, signum: int, frame: FrameType | None) -> None:
        """Write the state as the SDK does, then exit 128 + signal, not 0.

        A sync cut short by SIGTERM or SIGINT did not finish: an orchestrator must
        not count it a success. A signal that came during a write to stdout is
        acted on once that write is whole, and nothing is written after it (see
        `WholeMessageWriter`).
        """

        def terminate() -> None:
            with contextlib.suppress(SystemExit):
                self.sdk_terminate(signum, frame)
            self.logger.error(
                "Stopped by %s before the sync finished; the state sent so far is kept",
                signal.Signals(signum).name,
            )
            self.writer.exit_code = 128 + signum
            sys.exit(self.writer.exit_code)

        self.writer.after_writes(terminate)

    @property
    def streams(self) -> dict[str, Stream]:
        """Sync the cheap export list first; `meltano config test` stops at a record."""
        streams = super().streams
        order = sorted(streams, key=lambda name: name != ExportListStream.name)
        return {name: streams[name] for name in order}

    @cached_property
    def client(self) -> OktopostClient:
        """The API client, made on first use: discovery may run before any call."""
        return OktopostClient.from_config(self.config, self.logger)

    @cached_property
    def archives(self) -> ArchiveStore:
        """Every archive this process downloads, shared by discovery and sync."""
        return ArchiveStore(
            self.export_run,
            max_uncompressed_bytes=self.config.get(
                "max_uncompressed_bytes", DEFAULT_MAX_UNCOMPRESSED_BYTES
            ),
            max_archive_bytes=self.config.get(
                "max_archive_bytes", DEFAULT_MAX_ARCHIVE_BYTES
            ),
            max_disk_bytes=self.config.get("max_disk_bytes", DEFAULT_MAX_DISK_BYTES),
            **self._retry_settings,
        )

    @property
    def _retry_settings(self) -> dict[str, Any]:
        return {**retry_settings(self.config), "logger": self.logger}

    @cached_property
    def sync_timestamp(self) -> str:
        """One extraction time for every record of this run."""
        return datetime.datetime.now(datetime.timezone.utc).isoformat()

    @cached_property
    def ledger(self) -> RunLedger:
        """The bookmarks: read from the input state, written as STATE messages."""
        exports = self.streams[EXPORTS_STREAM]
        return RunLedger(
            partition=lambda export_id: exports.get_context_state({"Id": export_id}),
            flush=lambda: self.state_writer.write_state(self.state),
            initial=self.initial_state,
        )

    @classmethod
    def invoke(cls, **kwargs: Any) -> None:
        """Run the command line; a failure the tap explains ends in one ERROR line."""
        try:
            if kwargs.get("state") is not None:
                # Read and check it here: the SDK fails deep inside on a wrong shape.
                kwargs["state"] = io.StringIO(
                    json.dumps(read_state_file(kwargs["state"]))
                )
            super().invoke(**kwargs)
        except ConfigValidationError as error:
            cls.logger.error("Config validation error: %s", "; ".join(error.errors))
            sys.exit(1)
        except OktopostError as error:
            cls.logger.error("%s", error)
            sys.exit(1)

    def setup_mapper(self) -> None:
        """Refuse, before anything is sent, stream names that differ only by case."""
        super().setup_mapper()
        sent = {
            stream_map.stream_alias
            for stream in self.streams.values()
            if stream.selected
            for stream_map in self.mapper.stream_maps.get(stream.name, [])
            if not isinstance(stream_map, RemoveRecordTransform)
        }
        if clashes := case_clashes(sent):
            pairs = "; ".join(f"{first} and {second}" for first, second in clashes)
            message = (
                f"Streams {pairs} differ only by case (after stream_maps): "
                "Snowflake, which upper-cases names, would load them into one table. "
                "Give one of them another name in stream_maps"
            )
            raise OktopostError(message)

    @property
    def sync_plan(self) -> SyncPlan:
        """The runs this sync loads, downloaded and typed before any CSV SCHEMA."""
        if self._sync_plan is None:
            self._sync_plan = self._prepare_sync_plan()
        return self._sync_plan

    def _prepare_sync_plan(self) -> SyncPlan:
        if raw_batch_config := self.config.get(BATCH_CONFIG):
            removed = prepare_root(BatchConfig.from_dict(raw_batch_config), self.logger)
            if removed:
                self.logger.info("Deleted %d BATCH files of earlier syncs", removed)
        plan = SyncPlan(
            ledger=self.ledger,
            archives=self.archives,
            fetch_run=self.export_run,
            logger=self.logger,
        )
        tables = [
            stream
            for stream in self.streams.values()
            if isinstance(stream, ExportFileStream)
        ]
        selected = [stream for stream in tables if stream.selected]
        plan.prepare(
            self.export_ids,
            selected_tables={stream.name for stream in selected},
            known_tables={stream.name for stream in tables},
        )
        self._fail_sync_for_listing(plan)
        for stream in selected:
            stream.settle_schema(plan)
        return plan

    @property
    def column_typing(self) -> str:
        """The column_typing setting."""
        return str(self.config.get("column_typing", KEEP))

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

    def _fail_sync_for_listing(self, plan: SyncPlan) -> None:
        """Make a listing cut short a failure the sync's end reports, if one was made.

        An export the listing missed is not loaded, and its run may be lost.
        """
        listing: ExportListing | None = self.__dict__.get("export_listing")
        if listing is not None and listing.incomplete is not None:
            plan.failures.setdefault(LISTING_FAILURE, listing_cut_short(listing))

    @cached_property
    def export_ids(self) -> list[str]:
        """The exports to load: those configured, else every active one."""
        configured = [
            *self.config.get("export_ids", []),
            *filter(None, [self.config.get("test_export_id")]),
        ]
        if configured:
            return list(dict.fromkeys(configured))
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

    def export_run(self, export_id: str) -> ExportRun:
        """Fetch an export's detail: its last run and a fresh link to its file."""
        return ExportRun.from_detail(export_id, self.client.get_export(export_id))

    def discover_streams(self) -> list[Stream]:
        """Give the two metadata streams and one stream per CSV file name."""
        limit_field_size(
            self.config.get(FIELD_LIMIT_SETTING, DEFAULT_MAX_FIELD_CHARACTERS)
        )
        streams: list[OktopostStream] = [
            ExportListStream(self),
            ActiveExportStream(self),
        ]
        if self.input_catalog is not None:
            streams.extend(self._file_streams_from_catalog())
        else:
            streams.extend(self._file_streams_from_archives())
        self._warn_of_unknown_tables_and_columns(streams)
        return list(streams)

    def _file_streams_from_catalog(self) -> list[ExportFileStream]:
        """Rebuild the CSV streams a catalog names, without downloading anything."""
        assert self.input_catalog is not None  # noqa: S101
        streams = []
        for entry in self.input_catalog.streams:
            schema = entry.schema.to_dict()
            if SOURCE_FILE not in schema.get("properties", {}):
                continue
            keys = entry.key_properties or self._primary_keys(entry.tap_stream_id)
            streams.append(ExportFileStream(self, entry.tap_stream_id, schema, keys))
        return streams

    def _file_streams_from_archives(self) -> list[ExportFileStream]:
        """Read each active export's archive: headers name columns, rows type them."""
        shapes: dict[str, TableShape] = {}
        bookmarks = read_bookmarks(self.initial_state)
        earlier = self._names_in_state()
        for export_id in self.export_ids:
            try:
                run = self.export_run(export_id)
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
        streams = []
        for name, shape in sorted(shapes.items()):
            schema = shape.json_schema(self.pinned_types(name))
            keys = self._primary_keys(name)
            if missing := [key for key in keys if key not in schema["properties"]]:
                message = (
                    f"Setting primary_keys: stream {name} has no column "
                    f"{', '.join(missing)}"
                )
                raise ConfigValidationError(message, errors=[message])
            streams.append(ExportFileStream(self, name, schema, keys))
        return streams

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
            archive = self.archives.archive(run, headers_only=ranged)
            try:
                self._add_shapes(archive, trial, earlier)
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

    @staticmethod
    def _add_shapes(
        archive: ExportArchive,
        shapes: dict[str, TableShape],
        earlier: dict[str, EarlierNames],
    ) -> None:
        """Add the columns and sample types of an archive's CSV files."""
        for name, members in archive.tables.items():
            for member in members:
                try:
                    with archive.open_member(member) as binary:
                        rows = CsvSource(binary, SAMPLE_BUFFER_BYTES).rows
                        header = next((row for row in rows if row), None)
                        if header is not None:
                            shape = shapes.setdefault(name, TableShape())
                            shape.add(
                                header,
                                itertools.islice(rows, SAMPLE_ROWS),
                                earlier.get(name),
                            )
                except FileChangedError:
                    raise
                except (*READ_ERRORS, OktopostError) as error:
                    failure = member_error(archive, member, error, "at discovery")
                else:
                    continue
                raise failure  # out of the handler: no chained error to print

    def _warn_of_unknown_settings(self) -> None:
        """Name each setting the tap does not know: a misspelt one is ignored."""
        schema = copy.deepcopy(self.config_jsonschema)
        self.append_builtin_config(schema)
        known = list(schema.get("properties", {}))
        for name in sorted(set(self.config) - set(known)):
            guess = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {guess[0]}?" if guess else ""
            self.logger.warning("Unknown setting %s is ignored%s", name, hint)

    def _warn_of_unknown_tables_and_columns(
        self, streams: list[OktopostStream]
    ) -> None:
        """Name the tables and columns primary_keys and column_types give in vain.

        A warning, not an error: the table of an export that has not run yet, or a
        column of a later run, is not in the catalog yet.
        """
        columns = {
            stream.name: set(stream.schema.get("properties", {}))
            for stream in streams
            if isinstance(stream, ExportFileStream)
        }
        for setting in ("primary_keys", "column_types"):
            for table, named in (self.config.get(setting) or {}).items():
                if table not in columns:
                    self.logger.warning(
                        "Setting %s: no CSV stream is named %s (the streams: %s)",
                        setting,
                        table,
                        ", ".join(sorted(columns)) or "none",
                    )
                elif missing := [c for c in named if c not in columns[table]]:
                    self.logger.warning(
                        "Setting %s: stream %s has no column %s",
                        setting,
                        table,
                        ", ".join(missing),
                    )

    def pinned_types(self, stream_name: str) -> dict[str, str]:
        """Give the column types the column_types setting fixes for a stream."""
        pinned: dict[str, dict[str, str]] = self.config.get("column_types") or {}
        return dict(pinned.get(stream_name, {}))

    def _primary_keys(self, stream_name: str) -> list[str]:
        configured: dict[str, list[str]] = self.config.get("primary_keys") or {}
        return list(configured.get(stream_name) or DEFAULT_KEY)


LISTING_FAILURE = "(listing of exports)"
"""The key of a listing cut short among a sync's failures: no export Id looks so."""


def listing_cut_short(listing: ExportListing) -> str:
    """Say that the listing stopped early, why, and what the tap does about it."""
    return (
        f"Listing exports was cut short: {listing.incomplete}. The "
        f"{len(listing.exports)} exports listed still load, and the sync ends with "
        "an error: an export not listed is not loaded, and its run may be lost"
    )


def config_errors(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Check settings against their schema, naming each setting and rule, no value."""
    validator = JSONSchemaValidator(schema)
    errors = []
    for error in validator.iter_errors(config):
        where = ".".join(str(part) for part in error.absolute_path) or "config"
        if error.validator == "required":
            errors.append(error.message)  # names the missing setting, no value
        else:
            rule = f"{error.validator} {json.dumps(error.validator_value)}"
            errors.append(f"Setting {where} fails the rule {rule}")
    base_url = config.get("base_url")
    if isinstance(base_url, str) and (problem := base_url_problem(base_url)):
        errors.append(problem)
    return errors


if __name__ == "__main__":
    TapOktopost.cli()

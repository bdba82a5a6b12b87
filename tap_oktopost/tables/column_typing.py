"""Which type each CSV column gets, one way for discovery and the sync.

Discovery types a table from each file it reads: every row of an archive it holds
whole (one of `whole_file_discovery_bytes` or less, downloaded once and cached for
the sync), the first `SAMPLE_ROWS` rows of one read remotely. Both then go through
`settle_types`, as the sync's scan does, so a catalog from whole files gives each
column the type the sync sends; where a sync must send another (a sampled file's
later rows, a type the target has), `type_changes` says so, once per column.

SQL targets cannot be trusted to change a column's type: target-postgres refuses to,
Snowflake refuses NUMBER -> VARCHAR and rounds integer -> number silently. So by
default a column keeps the type its table already has at the target; a value that
does not fit it travels as text in `_sdc_unfit_values` instead.
"""

from __future__ import annotations

import copy
import itertools
from typing import IO, TYPE_CHECKING, Any

from tap_oktopost.tables.column_types import (
    ColumnType,
    joined_type,
    property_schema,
    scan_types,
    widen,
)
from tap_oktopost.tables.csv_data import (
    METADATA_PROPERTIES,
    CsvSource,
    MemberScan,
    scan_member,
)
from tap_oktopost.tables.names import EarlierNames, column_names

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

KEEP = "keep"
WIDEN = "widen"
TEXT = "text"
TYPING_POLICIES = (KEEP, WIDEN, TEXT)
"""keep: a column keeps the type it has at the target (values that do not fit go to
`_sdc_unfit_values`); widen: the column's type widens to fit (for targets that alter
columns); text: every CSV column is text (for teams that cast downstream)."""

SAMPLE_ROWS = 2000
"""Rows per CSV file read at discovery from an archive read remotely."""
SAMPLE_BUFFER_BYTES = 16 * 1024
"""Small reads, so that discovery fetches little more of a remote file than it uses."""
WHOLE_FILE_SETTING = "whole_file_discovery_bytes"
DEFAULT_WHOLE_FILE_BYTES = 256 * 1024**2
"""Archives up to this size are typed from every row at discovery: Oktopost's run
files are megabytes, and the sync needs each downloaded anyway."""


class TableShape:
    """The union of one table's columns over every file and export it appears in."""

    def __init__(self) -> None:
        self.columns: dict[str, tuple[ColumnType, str]] = {}
        self.floats_kept: dict[str, bool] = {}
        """Per column: whether a 64-bit float keeps every integer found so far."""

    def add(
        self,
        header: list[str],
        sample_rows: Iterable[list[str]],
        earlier: EarlierNames | None = None,
    ) -> None:
        """Add one file's columns, typed from its rows."""
        names = column_names(header, earlier)
        float_kept = [True] * len(names)
        types = scan_types(sample_rows, len(names), skip=header, float_kept=float_kept)
        self.add_typed(header, names, types, float_kept)

    def add_typed(
        self,
        header: list[str],
        names: list[str],
        types: list[ColumnType],
        float_kept: list[bool],
    ) -> None:
        """Add one file's columns with the types a scan found (see `joined_type`)."""
        for name, cell, column_type, kept in zip(
            names, header, types, float_kept, strict=True
        ):
            known_type, known_cell = self.columns.get(name, (ColumnType.NULL, cell))
            floats_kept = self.floats_kept.get(name, True) and kept
            self.floats_kept[name] = floats_kept
            self.columns[name] = (
                joined_type(known_type, column_type, floats_kept=floats_kept),
                known_cell,
            )

    def json_schema(
        self, pinned: Mapping[str, str] | None = None, policy: str = KEEP
    ) -> dict[str, Any]:
        """Give the table's schema: the columns every row carries, then the CSV's.

        Each column's type is the one a sync of these files settles on: see
        `settle_types` (`pinned`: column name -> type name).
        """
        settled = settle_types(
            declared={},
            scanned={name: found for name, (found, _) in self.columns.items()},
            remembered={},
            pinned=pinned or {},
            policy=policy,
        )
        properties = copy.deepcopy(METADATA_PROPERTIES)
        for name, (_, cell) in self.columns.items():
            properties[name] = property_schema(settled[name], cell.lstrip("\ufeff"))
        return {"type": "object", "properties": properties}


def add_member_shape(
    open_member: Callable[[], IO[bytes]],
    *,
    whole: bool,
    table: str,
    shapes: dict[str, TableShape],
    earlier: EarlierNames | None,
) -> MemberScan | None:
    """Add one CSV file's columns at discovery, typed as the sync will type them.

    A file on local disk (`whole`) is scanned whole, with the sync's own scan
    (decoding decided from every byte), and the scan is given back for the sync to
    reuse; one read remotely gives its first rows. A file with a header puts its
    table in `shapes` before its rows are read, so that a file failing in its rows
    is a table whose sync names the fault.
    """
    with open_member() as binary:
        rows = CsvSource(binary, SAMPLE_BUFFER_BYTES).rows
        header = next((row for row in rows if row), None)
        if header is None:
            return None
        shape = shapes.setdefault(table, TableShape())
        if not whole:
            shape.add(header, itertools.islice(rows, SAMPLE_ROWS), earlier)
            return None
    scan = scan_member(open_member, earlier=earlier)
    shape.add_typed(scan.header, scan.names, scan.types, scan.float_kept)
    return scan


def settle_types(
    *,
    declared: Mapping[str, ColumnType],
    scanned: Mapping[str, ColumnType],
    remembered: Mapping[str, str],
    pinned: Mapping[str, str],
    policy: str,
) -> dict[str, ColumnType]:
    """Give each column its type for this sync.

    `declared`: the catalog's types; `scanned`: the narrowest types that fit every
    value this sync sends; `remembered`: the types the target has from earlier
    syncs; `pinned`: the column_types setting. A pin always wins.
    """
    settled = {}
    for name in [*declared, *(name for name in scanned if name not in declared)]:
        found = widen(
            declared.get(name, ColumnType.NULL), scanned.get(name, ColumnType.NULL)
        )
        if name in pinned:
            settled[name] = ColumnType(pinned[name])
        elif policy == TEXT:
            settled[name] = ColumnType.STRING
        elif name in remembered and policy == KEEP:
            settled[name] = ColumnType(remembered[name])
        elif name in remembered:
            settled[name] = widen(
                ColumnType(remembered[name]), scanned.get(name, ColumnType.NULL)
            )
        else:
            settled[name] = found
    return settled


def type_changes(
    table: str,
    declared: Mapping[str, ColumnType],
    settled: Mapping[str, ColumnType],
    widened_by: Mapping[str, str],
) -> list[str]:
    """Say, per column, where the sync sends another type than the catalog's.

    `widened_by`: column -> the export whose file holds a value the catalog's type
    does not fit. A column the catalog lacks is no change of type.
    """
    changes = []
    for name, column_type in settled.items():
        was = declared.get(name)
        if was is None or was is column_type:
            continue
        if name in widened_by:
            why = (
                f"export {widened_by[name]}'s file holds values the catalog's type "
                f"does not fit (discovery sampled its first {SAMPLE_ROWS} rows: the "
                f"archive was larger than {WHOLE_FILE_SETTING}, or the catalog is "
                "older than the run)"
            )
        else:
            why = "the column_typing setting and the state's column types say so"
        changes.append(
            f"Stream {table}, column {name}: the catalog says {was.value}, this "
            f"sync sends {column_type.value}: {why}"
        )
    return changes

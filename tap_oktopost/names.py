"""Table and column names, derived from the text of file names and header cells.

A name depends on its text alone, never on its position, so that the same header in
any export lands in the same column. Names are ASCII snake_case of at most 63
characters, the longest identifier PostgreSQL keeps whole.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

from anyascii import anyascii

EXPORT_ID = "export_id"
SYNC_TIMESTAMP = "sync_timestamp"
SOURCE_FILE = "_sdc_source_file"
ROW_NUMBER = "_sdc_row_number"
EXPORT_RUN_AT = "_sdc_export_run_at"
EXTRA_VALUES = "_sdc_extra"
UNFIT_VALUES = "_sdc_unfit_values"
METADATA_NAMES = (
    EXPORT_ID,
    SYNC_TIMESTAMP,
    SOURCE_FILE,
    ROW_NUMBER,
    EXPORT_RUN_AT,
    EXTRA_VALUES,
    UNFIT_VALUES,
)
"""Columns every CSV row carries besides its own; a header cell never takes one."""

MAX_NAME_LENGTH = 63
_HASH_LENGTH = 8
_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[-_ .]+|$)")
_NOT_NAME_CHARS = re.compile(r"[^a-z0-9]+")


def snake_case(text: str) -> str:
    """Make a name every warehouse accepts unquoted-alike: ASCII, lower case, `_`."""
    return _NOT_NAME_CHARS.sub("_", anyascii(text).lower()).strip("_")


def text_hash(text: str) -> str:
    """Give a short hash of a text that stays the same in every run and export."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[
        :_HASH_LENGTH
    ]


def with_suffix(name: str, suffix: str) -> str:
    """Append `_suffix`, shortening the name so that the whole fits the limit."""
    room = MAX_NAME_LENGTH - len(suffix) - 1
    return f"{name[:room].rstrip('_')}_{suffix}"


def name_from_text(text: str, fallback_prefix: str) -> str:
    """Name a text: snake_case, a hash when there is no ASCII to keep or too much."""
    name = snake_case(text)
    if not name:
        return f"{fallback_prefix}_{text_hash(text)}"
    if len(name) > MAX_NAME_LENGTH:
        return with_suffix(name, text_hash(text))
    return name


def table_name(member_path: str) -> str | None:
    """Name the table for an archive member; None for folders and non-CSV files.

    The run date Oktopost puts in front of file names is dropped so that every run of
    an export lands in the same table.
    """
    base_name = member_path.replace("\\", "/").rsplit("/", 1)[-1]
    if not base_name.lower().endswith(".csv"):
        return None
    stem = base_name[: -len(".csv")]
    undated = _DATE_PREFIX.sub("", stem)
    if snake_case(undated):
        return name_from_text(undated, "table")
    return name_from_text(stem, "table") if stem else None


def column_names(header: list[str]) -> list[str]:
    """Name a header's columns, unique against each other and the metadata columns.

    When different cells clean to the same name, the cell written as that name (else
    the smallest text) keeps it, whatever the columns' order, and the others get a
    hash of their text; a cell repeated verbatim gets `_2`, `_3`, ...
    """
    cells = [cell.lstrip("\ufeff") for cell in header]
    bases = [name_from_text(cell, "column") for cell in cells]
    owners: dict[str, str] = {}
    for cell, base in zip(cells, bases, strict=True):
        if base not in METADATA_NAMES and (
            base not in owners
            or _precedence(cell, base) < _precedence(owners[base], base)
        ):
            owners[base] = cell
    occurrences: Counter[str] = Counter()
    wanted, plain = [], []
    for cell, base in zip(cells, bases, strict=True):
        occurrences[cell] += 1
        owned = owners.get(base) == cell
        name = base if owned else with_suffix(base, text_hash(cell))
        if occurrences[cell] > 1:
            name = with_suffix(name, str(occurrences[cell]))
        wanted.append(name)
        plain.append(owned and occurrences[cell] == 1)
    return _unique(wanted, plain)


def _precedence(cell: str, base: str) -> tuple[bool, str]:
    return cell != base, cell


def _unique(wanted: list[str], plain: list[bool]) -> list[str]:
    """Keep every wanted name that is free; plain names before suffixed ones."""
    taken = set(METADATA_NAMES)
    names = list(wanted)
    order = sorted(range(len(wanted)), key=lambda position: not plain[position])
    for position in order:
        name, count = wanted[position], 1
        while name in taken:
            count += 1
            name = with_suffix(wanted[position], str(count))
        taken.add(name)
        names[position] = name
    return names

"""Table and column names, derived from the text of file names and header cells.

A column's name is a function of its header text alone, never of its position or of
the other headers, so that one text lands in one column in every file, export and
run, and two texts that differ in more than case, Latin accents or the separators
space, `_`, `-` and `.` never share one. Names are ASCII snake_case of at most 63
characters (the longest identifier PostgreSQL keeps whole), and never a word that
Snowflake or PostgreSQL reserve. Names a table already has (in the input catalog or
the state) are kept, so that an upgrade of the tap renames no column.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import unicodedata
from typing import TYPE_CHECKING

from anyascii import anyascii

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

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

# fmt: off
SNOWFLAKE_RESERVED = frozenset((
    "all", "alter", "and", "any", "as", "between", "by", "case", "cast", "check",
    "column", "connect", "connection", "constraint", "create", "cross", "current",
    "current_date", "current_time", "current_timestamp", "current_user", "database",
    "delete", "distinct", "drop", "else", "exists", "false", "following", "for", "from",
    "full", "grant", "group", "gscluster", "having", "ilike", "in", "increment",
    "inner", "insert", "intersect", "into", "is", "issue", "join", "lateral", "left",
    "like", "localtime", "localtimestamp", "minus", "natural", "not", "null", "of",
    "on", "or", "order", "organization", "qualify", "regexp", "revoke", "right",
    "rlike", "row", "rows", "sample", "schema", "select", "set", "some", "start",
    "table", "tablesample", "then", "to", "trigger", "true", "try_cast", "union",
    "unique", "update", "using", "values", "view", "when", "whenever", "where",
    "window", "with",
))
# fmt: on
"""Snowflake's reserved keywords (its SQL reference, "Reserved & limited keywords")."""
# fmt: off
POSTGRESQL_RESERVED = frozenset((
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
    "authorization", "binary", "both", "case", "cast", "check", "collate", "collation",
    "column", "concurrently", "constraint", "create", "cross", "current_catalog",
    "current_date", "current_role", "current_schema", "current_time",
    "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct",
    "do", "else", "end", "except", "false", "fetch", "for", "foreign", "freeze", "from",
    "full", "grant", "group", "having", "ilike", "in", "initially", "inner",
    "intersect", "into", "is", "isnull", "join", "lateral", "leading", "left", "like",
    "limit", "localtime", "localtimestamp", "natural", "not", "notnull", "null",
    "offset", "on", "only", "or", "order", "outer", "overlaps", "placing", "primary",
    "references", "returning", "right", "select", "session_user", "similar", "some",
    "symmetric", "system_user", "table", "tablesample", "then", "to", "trailing",
    "true", "union", "unique", "user", "using", "variadic", "verbose", "when", "where",
    "window", "with",
))
# fmt: on
"""PostgreSQL's reserved key words, those that may be function or type names too."""
RESERVED = SNOWFLAKE_RESERVED | POSTGRESQL_RESERVED
COLUMN_SUFFIX = "col"
TABLE_SUFFIX = "table"

MAX_NAME_LENGTH = 63
_HASH_LENGTH = 8
_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[-_ .]+|$)")
_NOT_NAME_CHARS = re.compile(r"[^a-z0-9]+")
_SEPARATORS = re.compile(r"[\s_.\-]+")
_PLAIN_KEY = re.compile(r"[a-z0-9]+(?: [a-z0-9]+)*")
SYMBOL_WORDS = {
    "%": "pct",
    "‰": "permille",
    "#": "num",
    "№": "num",
    "$": "dollar",
    "€": "eur",
    "£": "gbp",
    "¥": "yen",
    "&": "and",
    "+": "plus",
    "@": "at",
    "=": "eq",
    "<": "lt",
    ">": "gt",
    "°": "deg",
}
"""Symbols read as words in a name; the name of a text holding one ends in a hash."""


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


def text_key(text: str) -> str:
    """Give what tells one column from another, case and separators aside.

    Latin letters lose their accents (`é` is `e`, `ł` is `l`); marks on letters of
    other scripts stay: they tell letters apart there.
    """
    kept: list[str] = []
    latin = False
    for char in unicodedata.normalize("NFD", text.lstrip("\ufeff").casefold()):
        if unicodedata.combining(char):
            if not latin:
                kept.append(char)
        else:
            latin = char.isalpha() and unicodedata.name(char, "").startswith("LATIN")
            plain = anyascii(char).lower() if latin and not char.isascii() else char
            kept.append(plain if plain.isascii() and plain.isalnum() else char)
    spaced = _SEPARATORS.sub(" ", unicodedata.normalize("NFC", "".join(kept)))
    return spaced.strip()


def _readable(key: str) -> str:
    """Spell a key in snake_case ASCII: symbols as words, other scripts in letters."""
    worded = "".join(
        f" {SYMBOL_WORDS[char]} " if char in SYMBOL_WORDS else char for char in key
    )
    return snake_case(worded)


def name_of(text: str) -> str:
    """Name a header text by its key alone.

    A key of ASCII letters and digits is named as written (a reserved word gets
    `_col`); any other key (a symbol, another script) is spelt readably and ends in
    a hash of the key, so that no two keys share a name.
    """
    key = text_key(text)
    readable = _readable(key)
    if not readable:
        return f"column_{text_hash(key)}"
    if _PLAIN_KEY.fullmatch(key) and len(readable) <= MAX_NAME_LENGTH:
        if readable in RESERVED:
            return f"{readable}_{COLUMN_SUFFIX}"
        stem, _, last = readable.rpartition("_")
        if readable not in METADATA_NAMES and not (
            last == COLUMN_SUFFIX and stem in RESERVED
        ):
            return readable
    return with_suffix(readable, text_hash(key))


def name_from_text(text: str, fallback_prefix: str) -> str:
    """Name a text as earlier releases named columns, and tables still.

    snake_case, with a hash of the text when there is no ASCII to keep or too much.
    """
    name = snake_case(text)
    if not name:
        return f"{fallback_prefix}_{text_hash(text)}"
    if len(name) > MAX_NAME_LENGTH:
        return with_suffix(name, text_hash(text))
    return name


def table_name(member_path: str) -> str | None:
    """Name the table for an archive member; None for folders and non-CSV files.

    The run date Oktopost puts in front of file names is dropped so that every run of
    an export lands in the same table. A reserved word gets `_table`.
    """
    base_name = member_path.replace("\\", "/").rsplit("/", 1)[-1]
    if not base_name.lower().endswith(".csv"):
        return None
    stem = base_name[: -len(".csv")]
    undated = _DATE_PREFIX.sub("", stem)
    text = undated if snake_case(undated) else stem
    if not text:
        return None
    name = name_from_text(text, TABLE_SUFFIX)
    stem_part, _, last = name.rpartition("_")
    if name in RESERVED or (last == TABLE_SUFFIX and stem_part in RESERVED):
        return with_suffix(name, TABLE_SUFFIX if name in RESERVED else text_hash(text))
    return name


@dataclasses.dataclass(frozen=True)
class EarlierNames:
    """The column names a table already has, kept through any change of the rule.

    `texts` is name -> header text, from the input catalog (each column's
    description keeps its header text); `in_state` the names the state remembers
    types of, without their texts. A header whose text a catalog column has keeps
    that column; one whose name under the earlier rule the state holds keeps that.
    """

    texts: Mapping[str, str] = dataclasses.field(default_factory=dict)
    in_state: Collection[str] = frozenset()

    @classmethod
    def of_table(
        cls, properties: Mapping[str, Mapping[str, object]], in_state: Collection[str]
    ) -> EarlierNames:
        """Read them from a stream's schema properties and its remembered types."""
        texts = {
            name: str(column["description"])
            for name, column in properties.items()
            if name not in METADATA_NAMES and column.get("description")
        }
        return cls(texts, frozenset(in_state) - set(METADATA_NAMES))

    @functools.cached_property
    def by_text(self) -> dict[str, str]:
        """Catalog names by their text (the smallest name for a text)."""
        return {text: name for name, text in sorted(self.texts.items(), reverse=True)}

    @functools.cached_property
    def by_key(self) -> dict[str, str]:
        """Catalog names by the key of their text (the smallest name for a key)."""
        return {
            text_key(text): name
            for name, text in sorted(self.texts.items(), reverse=True)
        }


def column_names(header: list[str], earlier: EarlierNames | None = None) -> list[str]:
    """Name a header's columns, unique against each other and the metadata columns.

    Each cell is named by `name_of` unless `earlier` names its text; a cell wanting
    a name another cell of the header has (the same text again) gets `_2`, `_3`...
    """
    known = earlier or EarlierNames()
    cells = [cell.lstrip("\ufeff") for cell in header]
    chosen = _earlier_choices(cells, known)
    key_of_name = {name: text_key(text) for name, text in known.texts.items()}
    wanted = []
    name_of_key: dict[str, str] = {}
    for cell, earlier_name in zip(cells, chosen, strict=True):
        key = text_key(cell)
        name = earlier_name or name_of_key.get(key)
        if name is None:
            name = name_of(cell)
            if key_of_name.get(name, key) != key:  # a catalog column of another text
                name = with_suffix(_readable(key) or "column", text_hash(key))
        name_of_key.setdefault(key, name)
        wanted.append(name)
    return _unique(wanted, first=[name is not None for name in chosen])


def _earlier_choices(cells: list[str], known: EarlierNames) -> list[str | None]:
    """Give each cell its earlier name, or None: see `EarlierNames`.

    The surest clues first: a state name only this text could have had, the name
    today's rule gives it, the earlier rule's clean name (for the cell that had it
    then, see `_precedence`), then the catalog's text and its key. The state wins:
    it says what was loaded, and a catalog may be a discovery of this release.
    """
    by_text, by_key = known.by_text, known.by_key

    def in_state(name: str) -> str | None:
        return name if name in known.in_state else None

    def earlier_clean_name(cell: str) -> str | None:
        return in_state(name_from_text(cell, "column"))

    clues = (
        lambda cell: in_state(
            with_suffix(name_from_text(cell, "column"), text_hash(cell))
        ),
        lambda cell: in_state(name_of(cell)),
        earlier_clean_name,
        by_text.get,
        lambda cell: by_key.get(text_key(cell)),
    )
    # A text written again is the same column again: numbered, not guessed.
    first_of = {cell: position for position, cell in reversed(list(enumerate(cells)))}
    positions = [p for p, cell in enumerate(cells) if first_of[cell] == p]
    by_precedence = sorted(
        positions,
        key=lambda p: _precedence(cells[p], name_from_text(cells[p], "column")),
    )
    chosen: list[str | None] = [None] * len(cells)
    claimed: set[str] = set()
    for clue in clues:
        for position in by_precedence if clue is earlier_clean_name else positions:
            name = clue(cells[position]) if chosen[position] is None else None
            if name is not None and name not in claimed:
                chosen[position] = name
                claimed.add(name)
    return chosen


def _precedence(cell: str, base: str) -> tuple[bool, str]:
    """Which of the cells cleaning to one name had it in earlier releases."""
    return cell != base, cell


def _unique(wanted: list[str], first: list[bool]) -> list[str]:
    """Give each name to one cell, those marked `first`, then the leftmost.

    The others are numbered from 2.
    """
    names = list(wanted)
    taken: set[str] = set()
    repeats = []
    order = sorted(range(len(wanted)), key=lambda position: not first[position])
    for position in order:
        if wanted[position] in taken:
            repeats.append(position)
        else:
            taken.add(wanted[position])
    for position in sorted(repeats):
        count = 2
        while (unique := with_suffix(wanted[position], str(count))) in taken:
            count += 1
        taken.add(unique)
        names[position] = unique
    return names


def case_clashes(names: Iterable[str]) -> list[tuple[str, str]]:
    """Give the pairs of names equal but for case: Snowflake makes them one table."""
    first: dict[str, str] = {}
    clashes = []
    for name in sorted(set(names)):
        seen = first.setdefault(name.casefold(), name)
        if seen != name:
            clashes.append((seen, name))
    return clashes


def superseded(catalog: Mapping[str, str], named: Mapping[str, str]) -> set[str]:
    """Give the catalog columns a header of the same text fills under another name.

    Both map name -> header text: `catalog` the input catalog's, `named` this
    sync's. A catalog discovered with today's rule beside a state of earlier names would
    otherwise add an empty twin of each renamed column to the table.
    """
    keys = {text_key(text) for text in named.values()}
    return {
        name
        for name, text in catalog.items()
        if name not in named and text_key(text) in keys
    }

"""Snowflake, emulated for the unmodified MeltanoLabs target-snowflake.

`main` is the command meltano.yml gives target-snowflake: the target's own command
line, run after `activate` when SNOWFLAKE_EMULATOR is set (the `test` environment
sets it), with the database in SNOWFLAKE_EMULATOR_DB_PATH (default output/snowflake).

fakesnow (Snowflake's SQL on DuckDB) runs most of what target-snowflake 0.20.4
sends. This layer adds exactly what it lacks for that target, and nothing more:

- the user stage `@~`: PUT copies a file into a folder next to the database files,
  REMOVE deletes it (`UserStage`);
- staged-file reads in MERGE and COPY: `$1:col::TYPE` over the staged JSON lines,
  `seq8()` as the order the rows were staged, and the QUALIFY keeping one row per
  key evaluated where its aliases are the staged columns;
- DROP FILE FORMAT (fakesnow only creates them);
- PUBLIC as the current schema of a connection naming only a database;
- Snowflake's refusal of a column type change other than a longer VARCHAR or a
  NUMBER's precision: error 002108 (MeltanoLabs/target-snowflake issue 276);
- Snowflake's refusal of a reserved word as an unquoted table or column name in
  CREATE TABLE and ADD COLUMN: error 001003 (the target quotes SQLAlchemy's and
  snowflake-sqlalchemy's reserved words, not `view`, `window`, `schema`,
  `database`, `connection`, `following`, `issue`, `organization`, `gscluster`,
  `try_cast`, which DuckDB takes, nor `qualify`, `lateral`, `tablesample`, which it
  refuses itself);
- one sink drained at a time: fakesnow's connections share one DuckDB database.

Each handler matches, in full, one statement shape the target sends; any other
statement goes to fakesnow unchanged, so a change in the target's SQL fails loudly.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import re
import shutil
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock
from urllib.parse import urlparse
from urllib.request import url2pathname

import fakesnow
import singer_sdk.target_base
from fakesnow.cursor import FakeSnowflakeCursor
from fakesnow.instance import FakeSnow
from fakesnow.transforms.file_format import lookup_file_format
from fakesnow.transforms.stage import LOCAL_BUCKET_PATH, parts_from_var
from snowflake.connector.errors import ProgrammingError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from fakesnow.conn import FakeSnowflakeConnection

    Execute = Callable[..., FakeSnowflakeCursor]

SWITCH = "SNOWFLAKE_EMULATOR"
DB_PATH = "SNOWFLAKE_EMULATOR_DB_PATH"
STAGED_ROWS = "_FS_STAGED_ROWS"
"""The temporary table a MERGE or COPY reads the staged rows from: SEQ (the order
they were staged, for seq8()), FILE and V (the row, for $1)."""

FLAGS = re.IGNORECASE | re.DOTALL
PUT = re.compile(r"put (?P<source>\S+) '@~/(?P<path>[^']*)'", FLAGS)
REMOVE = re.compile(r"remove '@~/(?P<path>[^']*)'", FLAGS)
DROP_FILE_FORMAT = re.compile(r"drop file format if exists (?P<name>\S+)", FLAGS)
MERGE = re.compile(
    r"merge into (?P<table>\S+) d using \(select (?P<columns>.+) "
    r"from '@~/(?P<path>[^']*)'\(file_format => (?P<format>[^)]+)\) "
    r"QUALIFY ROW_NUMBER\(\) OVER \(PARTITION BY (?P<keys>.+?) "
    r"ORDER BY SEQ8\(\) DESC\) = 1\) s (?P<rest>on .+)",
    FLAGS,
)
COPY = re.compile(
    r"copy into (?P<table>\S+) \((?P<aliases>[^)]*)\) from "
    r"\(select (?P<columns>.+) from '@~/(?P<path>[^']*)'\)\s*"
    r"file_format = \(format_name='(?P<format>[^']+)'\)",
    FLAGS,
)
ALTER_TYPE = re.compile(
    r"ALTER TABLE (?P<table>\S+) ALTER COLUMN (?P<column>\S+) "
    r"SET DATA TYPE (?P<type>.+)",
    FLAGS,
)

CREATE_TABLE = re.compile(
    r"CREATE (?:OR REPLACE )?(?:TEMPORARY |TRANSIENT )?TABLE (?:IF NOT EXISTS )?"
    r"(?P<table>\S+?)\s*\((?P<body>.*)\)",
    FLAGS,
)
ADD_COLUMN = re.compile(
    r"ALTER TABLE (?P<table>\S+) ADD COLUMN (?P<column>\S+) (?P<type>.+)", FLAGS
)
TABLE_CONSTRAINT = re.compile(
    r"(?:CONSTRAINT \S+ )?(?:PRIMARY KEY|UNIQUE|FOREIGN KEY|CHECK)\s*\(.*", FLAGS
)
# fmt: off
SNOWFLAKE_RESERVED = frozenset((
    "ALL", "ALTER", "AND", "ANY", "AS", "BETWEEN", "BY", "CASE", "CAST", "CHECK",
    "COLUMN", "CONNECT", "CONNECTION", "CONSTRAINT", "CREATE", "CROSS", "CURRENT",
    "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "CURRENT_USER", "DATABASE",
    "DELETE", "DISTINCT", "DROP", "ELSE", "EXISTS", "FALSE", "FOLLOWING", "FOR",
    "FROM", "FULL", "GRANT", "GROUP", "GSCLUSTER", "HAVING", "ILIKE", "IN",
    "INCREMENT", "INNER", "INSERT", "INTERSECT", "INTO", "IS", "ISSUE", "JOIN",
    "LATERAL", "LEFT", "LIKE", "LOCALTIME", "LOCALTIMESTAMP", "MINUS", "NATURAL",
    "NOT", "NULL", "OF", "ON", "OR", "ORDER", "ORGANIZATION", "QUALIFY", "REGEXP",
    "REVOKE", "RIGHT", "RLIKE", "ROW", "ROWS", "SAMPLE", "SCHEMA", "SELECT", "SET",
    "SOME", "START", "TABLE", "TABLESAMPLE", "THEN", "TO", "TRIGGER", "TRUE",
    "TRY_CAST", "UNION", "UNIQUE", "UPDATE", "USING", "VALUES", "VIEW", "WHEN",
    "WHENEVER", "WHERE", "WINDOW", "WITH",
))
# fmt: on
"""Snowflake's reserved keywords, from its SQL reference ("Reserved & limited
keywords"): not usable unquoted as a table or column name."""

PUT_COLUMNS = (
    *("source", "target", "source_size", "target_size"),
    *("source_compression", "target_compression", "status", "message"),
)
COPY_COLUMNS = ("file", "status", "rows_parsed", "rows_loaded", "errors_seen")


@dataclass(frozen=True)
class UserStage:
    """The user stage `@~`: a folder, so staged files outlive a session."""

    root: Path

    def put(self, source: Path, path: str) -> Path:
        target = (self.root / path / source.name).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise ProgrammingError(msg=f"Invalid stage path {path}", errno=1003)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target

    def files(self, path: str) -> list[Path]:
        """The staged files whose stage path starts with `path`, as in Snowflake."""
        prefix = path.strip("/")
        return sorted(
            file
            for file in self.root.rglob("*")
            if file.is_file()
            and file.relative_to(self.root).as_posix().startswith(prefix)
        )

    def remove(self, path: str) -> list[Path]:
        removed = self.files(path)
        for file in removed:
            file.unlink()
        return removed


def result(columns: Sequence[str], rows: Sequence[Sequence[str | int]]) -> str:
    """A SELECT whose result is these rows, for a statement answering with rows."""
    if not rows:
        return "SELECT " + ", ".join(f"NULL AS {name}" for name in columns) + " LIMIT 0"

    def literal(value: str | int) -> str:
        return (
            "'" + value.replace("'", "''") + "'"
            if isinstance(value, str)
            else str(value)
        )

    return " UNION ALL ".join(
        "SELECT "
        + ", ".join(
            f"{literal(value)} AS {name}"
            for name, value in zip(columns, row, strict=True)
        )
        for row in rows
    )


def from_staged(columns: str) -> str:
    """The target's `$1:col::TYPE as ALIAS` list, reading the staged rows' V."""
    return columns.replace("$1:", "V:")


@dataclass(frozen=True)
class Emulation:
    """The statements fakesnow lacks, each run as Snowflake runs it."""

    stage: UserStage

    def execute(
        self,
        execute: Execute,
        cursor: FakeSnowflakeCursor,
        command: str,
        *args: Any,
        **kwargs: Any,
    ) -> FakeSnowflakeCursor:
        statement = command.strip().rstrip(";").strip()
        if match := PUT.fullmatch(statement):
            staged = self.put(match, args[0] if args else kwargs.get("params"))
            return execute(cursor, result(PUT_COLUMNS, [staged]))
        if match := REMOVE.fullmatch(statement):
            removed = [(file.name, "removed") for file in self.stage.remove(match[1])]
            return execute(cursor, result(("name", "result"), removed))
        if match := DROP_FILE_FORMAT.fullmatch(statement):
            dropped = drop_file_format(cursor, match["name"])
            return execute(cursor, result(("status",), [(dropped,)]))
        if match := MERGE.fullmatch(statement):
            self.read_staged(cursor, match["path"], match["format"])
            return execute(
                cursor,
                f"merge into {match['table']} d using (select * from "  # noqa: S608
                f"(select {from_staged(match['columns'])}, SEQ AS _FS_SEQ "
                f"from {STAGED_ROWS}) qualify row_number() over "
                f"(partition by {match['keys']} order by _FS_SEQ desc) = 1) s "
                f"{match['rest']}",
            )
        if match := COPY.fullmatch(statement):
            self.read_staged(cursor, match["path"], match["format"])
            execute(
                cursor,
                f"insert into {match['table']} ({match['aliases']}) "  # noqa: S608
                f"select {from_staged(match['columns'])} from {STAGED_ROWS}",
            )
            loaded = cursor._duck_conn.execute(
                f"SELECT FILE, count(*) FROM {STAGED_ROWS} GROUP BY FILE ORDER BY 1"  # noqa: S608
            ).fetchall()
            rows = [(Path(file).name, "LOADED", n, n, 0) for file, n in loaded]
            return execute(cursor, result(COPY_COLUMNS, rows))
        if match := ALTER_TYPE.fullmatch(statement):
            refuse_type_change(cursor, match)
        refuse_reserved_names(statement)
        return execute(cursor, command, *args, **kwargs)

    def put(self, match: re.Match[str], params: object) -> tuple[str | int, ...]:
        """Stage the file; PUT's result row."""
        source = match["source"]
        if bound := re.fullmatch(r"%\((\w+)\)s", source):
            assert isinstance(params, dict), "PUT's file is a bound parameter"
            source = params[bound[1]]
        local = Path(url2pathname(urlparse(source.strip("'")).path))
        staged = self.stage.put(local, match["path"])
        size = local.stat().st_size
        compression = "GZIP" if local.suffix == ".gz" else "NONE"
        return (
            local.name,
            staged.name,
            size,
            size,
            compression,
            compression,
            "UPLOADED",
            "",
        )

    def read_staged(
        self, cursor: FakeSnowflakeCursor, path: str, file_format: str
    ) -> None:
        """Put the staged rows in STAGED_ROWS, read with the named file format."""
        conn, duck = cursor._conn, cursor._duck_conn
        options = lookup_file_format(duck, file_format, conn.database, conn.schema)
        if options["TYPE"] != "JSON":
            msg = f"Reading staged {options['TYPE']} files"
            raise NotImplementedError(msg)
        duck.execute(
            f"CREATE OR REPLACE TEMP TABLE {STAGED_ROWS} "
            "(SEQ BIGINT, FILE VARCHAR, V JSON)"
        )
        files = [str(file) for file in self.stage.files(path)]
        if files:
            duck.execute(
                f"INSERT INTO {STAGED_ROWS} "  # noqa: S608
                "SELECT row_number() OVER (), filename, json FROM read_json_objects("
                "?, format = 'newline_delimited', filename = true)",
                (files,),
            )


def drop_file_format(cursor: FakeSnowflakeCursor, name: str) -> str:
    """Drop the file format if it exists; DROP's status text."""
    conn = cursor._conn
    database, schema, format_name = parts_from_var(name, conn.database, conn.schema)
    cursor._duck_conn.execute(
        "DELETE FROM _fs_global._fs_information_schema._fs_file_formats "
        "WHERE database_name = ? AND schema_name = ? AND name = ?",
        (database, schema, format_name),
    )
    return f"{format_name} successfully dropped."


def refuse_type_change(cursor: FakeSnowflakeCursor, match: re.Match[str]) -> None:
    """Raise Snowflake's error 002108 for a type change Snowflake does not make."""
    column = match["column"]
    name = column.strip('"') if column.startswith('"') else column.upper()
    with cursor._conn.cursor() as describe:
        described = describe.execute(f"DESCRIBE TABLE {match['table']}").fetchall()
    current = {row[0]: str(row[1]) for row in described}.get(name)
    wanted = canonical_type(match["type"])
    if current and not allowed_type_change(canonical_type(current), wanted):
        raise ProgrammingError(
            msg=(
                "SQL compilation error: cannot change column "
                f"{name} from type {current} to {wanted}"
            ),
            errno=2108,
            sqlstate="22000",
        )


def defined_names(statement: str) -> list[str]:
    """The table and column names a CREATE TABLE or ADD COLUMN defines, as written."""
    if match := ADD_COLUMN.fullmatch(statement):
        return [*match["table"].split("."), match["column"]]
    if not (match := CREATE_TABLE.fullmatch(statement)):
        return []
    names = match["table"].split(".")
    depth, definition = 0, ""
    for char in f"{match['body']},":
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            words = definition.split()
            if words and not TABLE_CONSTRAINT.fullmatch(definition.strip()):
                names.append(words[0])
            definition = ""
        else:
            definition += char
    return names


def refuse_reserved_names(statement: str) -> None:
    """Raise Snowflake's syntax error 001003 for an unquoted reserved name."""
    for name in defined_names(statement):
        if not name.startswith('"') and name.upper() in SNOWFLAKE_RESERVED:
            raise ProgrammingError(
                msg=(
                    "SQL compilation error:\nsyntax error line 1 at position 0 "
                    f"unexpected '{name}'."
                ),
                errno=1003,
                sqlstate="42000",
            )


TYPE = re.compile(r"(?P<name>[A-Z][A-Z0-9_ ]*?)\s*(?:\((?P<size>[0-9, ]+)\))?")
SYNONYMS = {
    **dict.fromkeys(("VARCHAR", "STRING", "TEXT", "CHAR", "CHARACTER"), "VARCHAR"),
    **dict.fromkeys(("NUMBER", "DECIMAL", "NUMERIC"), "NUMBER"),
    **dict.fromkeys(("INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT"), "INTEGER"),
    **dict.fromkeys(("FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "REAL"), "FLOAT"),
    **dict.fromkeys(("DOUBLE PRECISION",), "FLOAT"),
    **dict.fromkeys(("TIMESTAMP", "DATETIME", "TIMESTAMP_NTZ"), "TIMESTAMP_NTZ"),
}
DEFAULT_SIZES = {"VARCHAR": "16777216", "NUMBER": "38,0", "TIMESTAMP_NTZ": "9"}
DEFAULT_SIZES |= {"TIMESTAMP_LTZ": "9", "TIMESTAMP_TZ": "9"}


def canonical_type(sql_type: str) -> str:
    """A type as DESCRIBE TABLE shows it: VARCHAR(16777216), NUMBER(38,0), FLOAT..."""
    parsed = TYPE.fullmatch(sql_type.strip().upper())
    if not parsed:
        return sql_type.strip().upper()
    name = SYNONYMS.get(parsed["name"], parsed["name"])
    if name == "INTEGER":
        return "NUMBER(38,0)"
    size = (parsed["size"] or DEFAULT_SIZES.get(name, "")).replace(" ", "")
    if name == "NUMBER" and "," not in size:
        size += ",0"
    return f"{name}({size})" if size else name


def allowed_type_change(current: str, wanted: str) -> bool:
    """Snowflake keeps a type or lengthens a VARCHAR or changes a NUMBER's precision."""
    if current == wanted:
        return True
    current_name, _, current_size = current.rstrip(")").partition("(")
    wanted_name, _, wanted_size = wanted.rstrip(")").partition("(")
    if current_name != wanted_name:
        return False
    if current_name == "VARCHAR":
        return int(wanted_size) >= int(current_size)
    return current_name == "NUMBER" and (
        current_size.split(",")[1] == wanted_size.split(",")[1]
    )


def activate(db_path: Path) -> None:
    """Make this process's Snowflake connections emulated ones, kept in `db_path`."""
    db_path.mkdir(parents=True, exist_ok=True)
    emulation = Emulation(UserStage(db_path / "user_stage"))
    execute: Execute = FakeSnowflakeCursor.execute
    connect: Callable[..., FakeSnowflakeConnection] = FakeSnow.connect

    def emulated(cursor: FakeSnowflakeCursor, *args: Any, **kwargs: Any) -> Any:
        return emulation.execute(execute, cursor, *args, **kwargs)

    def connect_in_public(
        fake: FakeSnow,
        database: str | None = None,
        schema: str | None = None,
        **kwargs: Any,
    ) -> FakeSnowflakeConnection:
        """Snowflake puts a connection naming a database only in its PUBLIC schema."""
        schema = schema or ("PUBLIC" if database else None)
        return connect(fake, database, schema, **kwargs)

    patched = contextlib.ExitStack()
    for target, attribute, new in (
        (FakeSnowflakeCursor, "execute", functools.wraps(execute)(emulated)),
        (FakeSnow, "connect", connect_in_public),
        (singer_sdk.target_base, "_MAX_PARALLELISM", 1),
    ):
        patched.enter_context(mock.patch.object(target, attribute, new))
    patched.enter_context(fakesnow.patch(db_path=db_path))
    atexit.register(patched.close)
    # fakesnow makes this folder for its own stages, which the target never uses
    atexit.register(shutil.rmtree, LOCAL_BUCKET_PATH, ignore_errors=True)


def main() -> None:
    """target-snowflake's own command line, emulated when SNOWFLAKE_EMULATOR is set."""
    if os.environ.get(SWITCH):
        activate(Path(os.environ.get(DB_PATH) or "output/snowflake"))
    (command,) = entry_points(group="console_scripts", name="target-snowflake")
    command.load()()

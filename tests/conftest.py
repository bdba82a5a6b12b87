"""Shared fixtures: a local Oktopost stand-in and a way to run the tap as users do."""

from __future__ import annotations

import contextlib
import copy
import csv
import fcntl
import gzip
import io
import json
import logging
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tap_oktopost.api import retry
from tap_oktopost.sync.ledger import read_bookmarks
from tap_oktopost.tables.csv_data import DEFAULT_MAX_FIELD_CHARACTERS, limit_field_size
from tap_oktopost.tap import TapOktopost
from tests.stand_ins.oktopost_stand_in import (
    OktopostStandIn,
    StandInExport,
    demo_exports,
    make_zip,
)

TAP = [sys.executable, "-m", "tap_oktopost"]
ROOT = Path(__file__).resolve().parent.parent
MELTANO_SYS_DIR = (
    ROOT / ".meltano" / "pytest" / worker
    if (worker := os.environ.get("PYTEST_XDIST_WORKER"))
    else ROOT / ".meltano"
)
"""The project's `.meltano` for this pytest worker (MELTANO_SYS_DIR_ROOT).

Meltano keeps one catalog file per plugin there: two workers' runs of the tap
would read each other's catalogs.
"""
MELTANO = Path(sys.executable).parent / "meltano"
POSTGRES_PORT = os.environ.get("TEST_PG_PORT", "55432")
"""The port of this clone's test PostgreSQL (`scripts/postgres.sh run` sets it)."""
# fakesnow, the Snowflake emulator, needs Python 3.11.
collect_ignore = ["end_to_end/test_snowflake.py"] if sys.version_info < (3, 11) else []


@contextlib.contextmanager
def building_from_checkout() -> Iterator[None]:
    """Hold this checkout's build lock while a command builds the package from it.

    setuptools writes build/ and *.egg-info into the source tree: two pytest
    workers installing the tap from this checkout at once would mix their files.
    """
    with (ROOT / "build.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def batch_file_lines(path: Path) -> list[bytes]:
    """The JSON lines of a BATCH file the tap wrote, gzipped or plain."""
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).splitlines()


def config_for(stand_in: OktopostStandIn, **settings: Any) -> dict[str, Any]:
    """Settings pointing the tap at a stand-in."""
    return {
        "account_id": stand_in.account_id,
        "api_key": stand_in.api_key,
        "base_url": stand_in.base_url,
        "max_retries": 2,
        **settings,
    }


@dataclass
class TapRun:
    """What one tap process printed: Singer messages on stdout, logs on stderr."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [
            message["record"]
            for message in self.messages
            if message["type"] == "RECORD" and message["stream"] == stream
        ]

    def schemas(self, stream: str) -> list[dict[str, Any]]:
        return [
            message["schema"]
            for message in self.messages
            if message["type"] == "SCHEMA" and message["stream"] == stream
        ]

    def record_counts(self) -> Counter[str]:
        return Counter(
            message["stream"]
            for message in self.messages
            if message["type"] == "RECORD"
        )

    @property
    def final_state(self) -> dict[str, Any]:
        states = [m["value"] for m in self.messages if m["type"] == "STATE"]
        return states[-1] if states else {}

    def bookmark(self, export_id: str) -> str | None:
        """The run of the export whose detail and selected tables all went out."""
        bookmark = read_bookmarks(self.final_state).get(export_id)
        return bookmark.run if bookmark else None


def run_tap(
    config: dict[str, Any],
    tmp_path: Path,
    *,
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    discover: bool = False,
    check: bool = True,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> TapRun:
    """Run the tap's command line in a child process, as Meltano would."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    command = [*TAP, "--config", str(config_file), *(extra_args or [])]
    if discover:
        command.append("--discover")
    for option, value in (("--state", state), ("--catalog", catalog)):
        if value is not None:
            path = tmp_path / f"{option.strip('-')}.json"
            path.write_text(json.dumps(value))
            command += [option, str(path)]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAP_OKTOPOST_")},
        **(env or {}),
    }
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        check=False,
    )
    run = TapRun(done.returncode, done.stdout, done.stderr)
    if discover:
        if done.returncode == 0:
            run.messages = [json.loads(done.stdout)]
    else:
        run.messages = [json.loads(line) for line in done.stdout.splitlines() if line]
    if check and done.returncode != 0:
        pytest.fail(f"tap exited {done.returncode}:\n{done.stderr[-3000:]}")
    return run


class _LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def sync_in_process(
    config: dict[str, Any],
    *,
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
) -> TapRun:
    """Sync as the command line does, in this process: the fast way to test a sync.

    `stderr` holds the log lines; `returncode` is 1 when the sync raised.
    """
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    logs = _LogLines()
    root = logging.getLogger()
    root.addHandler(logs)
    level = root.level
    root.setLevel(logging.DEBUG)
    returncode = 0
    try:
        with contextlib.redirect_stdout(stdout):
            tap = TapOktopost(
                config=config, state=copy.deepcopy(state), catalog=catalog
            )
            try:
                tap.sync_all()
            except SystemExit as exit_:
                returncode = int(exit_.code or 0)
            except Exception as error:
                logs.lines.append(f"Traceback: {type(error).__name__}: {error}")
                returncode = 1
    finally:
        root.removeHandler(logs)
        root.setLevel(level)
    text = stdout.buffer.getvalue().decode()
    run = TapRun(returncode, text, "\n".join(logs.lines))
    run.messages = [json.loads(line) for line in text.splitlines() if line]
    return run


def discover_in_process(config: dict[str, Any]) -> dict[str, Any]:
    """The catalog `--discover` prints, found in this process."""
    catalog: dict[str, Any] = TapOktopost(config=config).catalog_dict
    return copy.deepcopy(catalog)


def deselect(catalog: dict[str, Any], stream: str, *breadcrumb: str) -> None:
    """Deselect a stream, or one of its properties, in a discovered catalog."""
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if entry["tap_stream_id"] == stream and metadata["breadcrumb"] == list(
                breadcrumb
            ):
                metadata["metadata"]["selected"] = False


def csv_text(rows: list[list[str]], line_ending: str = "\r\n") -> str:
    """CSV text with quoting as Excel and Oktopost write it."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=line_ending).writerows(rows)
    return buffer.getvalue()


def export_with(
    export_id: str,
    members: Mapping[str, str | bytes],
    run_date: object = "2026-11-27 10:00:00",
    **fields: Any,
) -> StandInExport:
    """An active export whose last run holds these archive members."""
    return StandInExport(
        id=export_id, last_run_date=run_date, archive=make_zip(dict(members)), **fields
    )


@pytest.fixture
def stand_in() -> Any:
    """A fresh stand-in per test, with small pages so that paging is exercised."""
    with OktopostStandIn(page_size=2) as server:
        yield server


@pytest.fixture
def demo(stand_in: OktopostStandIn) -> OktopostStandIn:
    """The stand-in serving the demo exports."""
    for export in demo_exports():
        stand_in.add_export(export)
    return stand_in


@pytest.fixture(autouse=True)
def _call_log_per_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the call logs and archive cache of the tap in the test's own folder.

    Discovery and sync in one test still share theirs, as Meltano's processes do.
    """
    monkeypatch.setattr(retry, "CALL_LOG_DIR", tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _field_limit_restored() -> Any:
    """Put back the process-wide CSV field limit a sync in this process may set."""
    yield
    limit_field_size(DEFAULT_MAX_FIELD_CHARACTERS)


# -- Meltano, in the project's `test` environment ---------------------------------


def meltano_env(database: Path) -> dict[str, str]:
    """The environment of every Meltano command: this session's system database.

    The plugins may write their bytecode: with PYTHONDONTWRITEBYTECODE, Meltano's uv
    venvs hold none and every run compiles the plugins' imports again.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TAP_OKTOPOST_", "TARGET_", "MELTANO_", "PG"))
        and key != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        {
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_DATABASE_URI": f"sqlite:///{database}",
            # The tap's archive cache: the session's own, never the user's.
            "XDG_CACHE_HOME": str(database.parent / "cache"),
            "MELTANO_SYS_DIR_ROOT": str(MELTANO_SYS_DIR),
            "TARGET_POSTGRES_PORT": POSTGRES_PORT,
        }
    )
    return env


def meltano(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a Meltano command of the project in its `test` environment."""
    return meltano_in(ROOT, env, "--environment=test", *args, check=check)


def meltano_in(
    folder: Path, env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a Meltano command in a project folder; a failure shows what it printed."""
    done = subprocess.run(
        [str(MELTANO), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"meltano {' '.join(args)} exited {done.returncode}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
        )
    return done


NOT_SNOWFLAKE_PLUGINS = (
    "tap-oktopost",
    "target-duckdb",
    "target-postgres",
    "target-jsonl",
)


@pytest.fixture(scope="session")
def meltano_base_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Start PostgreSQL and install the project's plugins, once per session."""
    subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "start"], check=True)
    env = meltano_env(tmp_path_factory.mktemp("meltano") / "meltano.db")
    # target-snowflake's emulator (fakesnow) needs Python 3.11: not below it.
    plugins = [] if sys.version_info >= (3, 11) else [*NOT_SNOWFLAKE_PLUGINS]
    with building_from_checkout():
        meltano(env, "install", *plugins)
    return env

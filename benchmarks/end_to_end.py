"""End to end: `meltano run tap-oktopost target-postgres`, RECORDs against BATCH files.

For each size it serves one generated posts export (``bench.write_archive``) through
the local stand-in and runs the project's `test` pipeline into the PostgreSQL of
``scripts/postgres.sh`` (its port from ``TEST_PG_PORT``, as ``scripts/postgres.sh run``
sets it), once per variant (``VARIANTS``: RECORDs with the target's defaults, and
BATCH files with the target settings docs/batch-and-performance.md documents),
``--repeats`` times in rotating order (RECORDs, minutes a run, once), each run from no
state into a fresh schema. In the same run it times
the tap alone (RECORDs to /dev/null) and the floor (benchmarks/floor.py) through
benchmarks/measure.py, and the recommended variant's parts one by one: the tap's
``--discover``, the tap's sync writing its files, and the target alone loading them.

Wall time is Meltano's whole run; the peak RSS of the tap and of the target is their
``VmHWM`` from ``/proc``, polled every 0.1 s over Meltano's process tree. The plugins
are installed (``meltano install``) if missing, and their modules byte-compiled as a
pip install would (uv, which Meltano installs with, leaves that to the first run, and
a ``PYTHONDONTWRITEBYTECODE`` environment would make every run compile again).
Nothing asserts on time; the machine is shared. The figures go into the "End to end"
section of ``--output`` (benchmarks/results.md), replacing the earlier one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench import (
    BENCH_DIR,
    EXPORT_ID,
    ROOT,
    STREAM,
    posts_export,
    short_commit,
    write_archive,
)

from tests.stand_ins.oktopost_stand_in import OktopostStandIn

MELTANO = Path(sys.executable).parent / "meltano"
POSTGRES_PORT = os.environ.get("TEST_PG_PORT", "55432")
"""The server of `scripts/postgres.sh run` (its TEST_PG_PORT), else its default port."""
PLUGIN_VENVS = {
    "tap-oktopost": ROOT / ".meltano" / "extractors" / "tap-oktopost" / "venv",
    "target-postgres": ROOT / ".meltano" / "loaders" / "target-postgres" / "venv",
}
TARGET = PLUGIN_VENVS["target-postgres"] / "bin" / "target-postgres"
SECTION = "## End to end"
"""The heading of the section this script owns in the results file."""


@dataclass(frozen=True)
class Variant:
    """One pipeline configuration: RECORDs, or BATCH files and the target's settings."""

    key: str
    label: str
    compression: str | None = None
    batch_size: int = 0
    target: dict[str, str] = field(default_factory=dict)

    def env(self, batch_root: Path) -> dict[str, str]:
        """Give the Meltano environment variables that set this variant up."""
        settings = {
            f"TARGET_POSTGRES_{name.upper()}": value
            for name, value in self.target.items()
        }
        if self.compression is None:
            return settings
        batch_config = {
            "encoding": {"format": "jsonl", "compression": self.compression},
            "storage": {"root": batch_root.as_uri()},
            "batch_size": self.batch_size,
        }
        return {**settings, "TAP_OKTOPOST_BATCH_CONFIG": json.dumps(batch_config)}


NO_LOADER_METADATA = {"add_record_metadata": "false", "activate_version": "false"}
VARIANTS = {
    variant.key: variant
    for variant in (
        Variant("records", "RECORDs (target defaults)"),
        Variant(
            "gzip-10k",
            "BATCH gzip, 10,000 rows a file, use_copy",
            "gzip",
            10_000,
            {"use_copy": "true"},
        ),
        Variant(
            "none-50k",
            "BATCH none, 50,000 rows a file, use_copy",
            "none",
            50_000,
            {"use_copy": "true"},
        ),
        Variant(
            "recommended",
            "BATCH none, 50,000 rows a file, use_copy, no loader metadata",
            "none",
            50_000,
            {"use_copy": "true", **NO_LOADER_METADATA},
        ),
    )
}
RECOMMENDED = VARIANTS["recommended"]


@dataclass
class Result:
    """One measured run."""

    label: str
    seconds: float
    tap_mb: float
    target_mb: float | None
    rows: int | None = None
    cpu_seconds: float | None = None


@dataclass
class SizeResults:
    """Everything measured at one size."""

    rows: int
    runs: list[Result] = field(default_factory=list)
    parts: list[Result] = field(default_factory=list)

    def of(self, label: str) -> list[Result]:
        """Give the runs of one label."""
        return [run for run in self.runs if run.label == label]

    def median(self, label: str) -> float:
        """Give the median wall time of one label's runs."""
        return statistics.median(run.seconds for run in self.of(label))


def children(pid: int) -> list[int]:
    """Every live descendant of a process."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def peak_kb(pid: int) -> tuple[str, int]:
    """Give a process's command line and memory high-water mark, or ("", 0)."""
    try:
        command = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return "", 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return command.replace(b"\0", b" ").decode(errors="replace"), int(
                line.split()[1]
            )
    return "", 0


def meltano(env: dict[str, str], *args: str) -> str:
    """Run a Meltano command of the project in its `test` environment; give stdout."""
    done = subprocess.run(  # noqa: S603 - our own Meltano
        [str(MELTANO), "--environment=test", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"meltano {shlex.join(args)} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def install_plugins(env: dict[str, str]) -> None:
    """Install the tap and target-postgres if missing; byte-compile their modules."""
    if not all((venv / "bin" / "python").exists() for venv in PLUGIN_VENVS.values()):
        meltano(
            {**env, "UV_COMPILE_BYTECODE": "1"},
            "install",
            "extractor",
            "tap-oktopost",
            "loader",
            "target-postgres",
        )
    folders = [ROOT / "tap_oktopost"]
    for venv in PLUGIN_VENVS.values():
        folders.extend(venv.glob("lib/python*/site-packages"))
    subprocess.run(  # noqa: S603 - the standard library's compileall
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *map(str, folders)],
        stdout=subprocess.DEVNULL,
        check=False,
    )


def meltano_run(env: dict[str, str], label: str, state_id_suffix: str) -> Result:
    """Run the pipeline from no state, polling the tap's and target's peak memory."""
    peaks = {"tap": 0, "target": 0}
    done = threading.Event()
    start = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own Meltano
        [
            str(MELTANO),
            "--environment=test",
            "run",
            f"--state-id-suffix={state_id_suffix}",
            "tap-oktopost",
            "target-postgres",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def poll() -> None:
        while not done.wait(0.1):
            for child in children(process.pid):
                command, kb = peak_kb(child)
                for role, name in (
                    ("tap", "tap-oktopost"),
                    ("target", "target-postgres"),
                ):
                    if f"bin/{name} " in f"{command} ":
                        peaks[role] = max(peaks[role], kb)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - start
    done.set()
    poller.join()
    if process.returncode != 0:
        sys.exit(f"{label}: meltano run failed:\n{stderr.decode()[-4000:]}")
    return Result(label, seconds, peaks["tap"] / 1024, peaks["target"] / 1024)


def measured(
    command: list[str],
    label: str,
    folder: Path,
    *,
    stdin: Path | None = None,
    stdout: Path | None = None,
) -> Result:
    """Run a command through benchmarks/measure.py (stdout to /dev/null by default)."""
    errors = folder / f"{uuid.uuid4().hex}.err"
    with (stdin or Path(os.devnull)).open("rb") as source:
        done = subprocess.run(  # noqa: S603 - our own scripts
            [
                sys.executable,
                str(BENCH_DIR / "measure.py"),
                str(stdout or os.devnull),
                str(errors),
                "--",
                *command,
            ],
            stdin=source,
            capture_output=True,
            text=True,
            check=True,
        )
    result = json.loads(done.stdout)
    if result["returncode"] != 0:
        sys.exit(f"{label} failed: {errors.read_text()[-4000:]}")
    return Result(
        label,
        result["seconds"],
        result["maxrss_kb"] / 1024,
        None,
        cpu_seconds=result["cpu_seconds"],
    )


def psql(env: dict[str, str], query: str) -> str:
    """Run a query on the test server with psql from PATH; give its output."""
    done = subprocess.run(  # noqa: S603 - psql, our own queries
        [  # noqa: S607 - psql from PATH, as scripts/postgres.sh uses it
            "psql",
            "-X",
            "-q",
            "-t",
            "-A",
            "-h",
            "127.0.0.1",
            "-p",
            POSTGRES_PORT,
            "-U",
            "oktopost",
            "-d",
            "oktopost",
            "-c",
            query,
        ],
        env={**env, "PGPASSWORD": "oktopost"},
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def row_count(env: dict[str, str], schema: str) -> int:
    """Give the rows of the loaded posts table, or -1 if there is none."""
    text = psql(env, f'select count(*) from "{schema}".{STREAM}')  # noqa: S608
    return int(text) if text.isdigit() else -1


class EndToEnd:
    """Measures one size: the tap alone, the floor, and Meltano runs of each variant."""

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.variants = [VARIANTS[key] for key in args.variants.split(",") if key]

    def meltano_env(self) -> dict[str, str]:
        """Give Meltano's environment: this server, no outside settings or state."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TAP_OKTOPOST_", "TARGET_", "MELTANO_", "PG"))
        }
        env.update(
            {
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "MELTANO_DATABASE_URI": f"sqlite:///{self.folder / 'meltano.db'}",
                "TARGET_POSTGRES_PORT": POSTGRES_PORT,
            }
        )
        return env

    def base_env(self, stand_in: OktopostStandIn) -> dict[str, str]:
        """Give Meltano's environment for syncs from this stand-in."""
        return {
            **self.meltano_env(),
            "TAP_OKTOPOST_BASE_URL": stand_in.base_url,
            "TAP_OKTOPOST_ACCOUNT_ID": stand_in.account_id,
            "TAP_OKTOPOST_API_KEY": stand_in.api_key,
        }

    def run_size(self, rows: int) -> SizeResults:
        """Measure every variant at one size."""
        results = SizeResults(rows)
        with OktopostStandIn() as stand_in:
            archive = self.folder / f"posts-{rows}.zip"
            write_archive(archive, rows, seed=20261127)
            stand_in.add_export(posts_export(archive.read_bytes()))
            archive.unlink()
            config = self.folder / "config.json"
            config.write_text(
                json.dumps(
                    {
                        "account_id": stand_in.account_id,
                        "api_key": stand_in.api_key,
                        "base_url": stand_in.base_url,
                    }
                )
            )
            env = self.base_env(stand_in)
            variants = [
                variant
                for variant in self.variants
                if variant.compression is not None or rows <= self.args.records_max_rows
            ]
            for repeat in range(self.args.repeats):
                shift = repeat % (len(variants) + 1)
                order = [None, *variants]
                for variant in order[shift:] + order[:shift]:
                    if variant is None:
                        runs = self.tap_alone(config)
                    elif variant.compression is not None or repeat == 0:
                        runs = [self.pipeline(env, variant, rows)]
                    else:
                        continue
                    results.runs.extend(runs)
                    for run in runs:
                        print(f"  {rows:,} rows: {run}", flush=True)
            if RECOMMENDED in self.variants:
                results.parts = self.parts(env, config, rows)
        return results

    def tap_alone(self, config: Path) -> list[Result]:
        """Time the floor and the tap alone, RECORDs to /dev/null."""
        return [
            measured(
                [sys.executable, str(BENCH_DIR / "floor.py"), str(config), EXPORT_ID],
                "floor (bare Python, stdout to /dev/null)",
                self.folder,
            ),
            measured(
                [sys.executable, "-m", "tap_oktopost", "--config", str(config)],
                "tap alone, RECORDs to /dev/null",
                self.folder,
            ),
        ]

    def pipeline(self, env: dict[str, str], variant: Variant, rows: int) -> Result:
        """Run Meltano once for a variant into a fresh schema; check the row count."""
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        run_env = {
            **env,
            **variant.env(self.folder / "batches"),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        }
        try:
            result = meltano_run(run_env, variant.label, schema)
            result.rows = row_count(env, schema)
        finally:
            psql(env, f'drop schema if exists "{schema}" cascade')
        if result.rows != rows:
            sys.exit(f"{variant.label}: {result.rows} rows loaded instead of {rows}")
        return result

    def parts(self, env: dict[str, str], config: Path, rows: int) -> list[Result]:
        """Time the recommended pipeline's parts one after another, outside Meltano.

        The tap's `--discover` (Meltano runs it before each sync), the tap's sync
        writing its BATCH files (its output kept), and the target alone loading
        that output with the configuration Meltano gives it.
        """
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        run_env = {
            **env,
            **RECOMMENDED.env(self.folder / "batches"),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        }
        tap_config = self.folder / "tap.json"
        tap_config.write_text(
            meltano(run_env, "invoke", "--dump=config", "tap-oktopost")
        )
        target_config = self.folder / "target.json"
        target_config.write_text(
            meltano(run_env, "invoke", "--dump=config", "target-postgres")
        )
        tap = str(PLUGIN_VENVS["tap-oktopost"] / "bin" / "tap-oktopost")
        output = self.folder / "tap-output.jsonl"
        parts = [
            measured(
                [tap, "--config", str(tap_config), "--discover"],
                "tap --discover (Meltano runs it first)",
                self.folder,
            ),
            measured(
                [tap, "--config", str(tap_config)],
                "tap sync writing BATCH files (output to a file)",
                self.folder,
                stdout=output,
            ),
        ]
        try:
            target = measured(
                [str(TARGET), "--config", str(target_config)],
                "target alone, loading that output",
                self.folder,
                stdin=output,
            )
            target.target_mb, target.tap_mb = target.tap_mb, 0
            target.rows = row_count(env, schema)
            parts.append(target)
        finally:
            psql(env, f'drop schema if exists "{schema}" cascade')
        return parts


def size_table(result: SizeResults) -> str:
    """Give one size's medians, with ratios against the tap alone of the same run."""
    tap = result.median("tap alone, RECORDs to /dev/null")
    lines = [
        f"{result.rows:,} rows, one export, one CSV file; medians:",
        "",
        "| run | wall s | / tap alone | tap peak RSS MB | target peak RSS MB "
        "| rows in PostgreSQL |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label in dict.fromkeys(run.label for run in result.runs):
        runs = result.of(label)
        tap_mb = max(run.tap_mb for run in runs)
        targets = [run.target_mb for run in runs if run.target_mb is not None]
        target = f"{max(targets):.0f}" if targets else ""
        loaded = {run.rows for run in runs if run.rows is not None}
        rows = ", ".join(f"{count:,}" for count in sorted(loaded))
        median = result.median(label)
        lines.append(
            f"| {label} | {median:.1f} | {median / tap:.1f} | {tap_mb:.0f} "
            f"| {target} | {rows} |"
        )
    if result.parts:
        lines.extend(
            [
                "",
                "The recommended variant's parts, run one after another (one run; "
                "CPU is user + system of the process):\n\n"
                "| part | wall s | CPU s | peak RSS MB | rows |",
                "|---|---:|---:|---:|---:|",
            ]
        )
        for part in result.parts:
            peak = part.target_mb if part.target_mb is not None else part.tap_mb
            rows = "" if part.rows is None else f"{part.rows:,}"
            cpu = "" if part.cpu_seconds is None else f"{part.cpu_seconds:.1f}"
            lines.append(
                f"| {part.label} | {part.seconds:.1f} | {cpu} | {peak:.0f} | {rows} |"
            )
    return "\n".join(lines)


def every_run(results: list[SizeResults]) -> str:
    """Give every Meltano and tap run in the order they ran."""
    lines = [
        "| rows | run | wall s | tap peak RSS MB | target peak RSS MB |",
        "|---:|---|---:|---:|---:|",
    ]
    for result in results:
        for run in result.runs:
            target = "" if run.target_mb is None else f"{run.target_mb:.0f}"
            lines.append(
                f"| {result.rows:,} | {run.label} | {run.seconds:.1f} "
                f"| {run.tap_mb:.0f} | {target} |"
            )
    return "\n".join(lines)


def section(results: list[SizeResults], args: argparse.Namespace, took: float) -> str:
    """Give the results file's end-to-end section."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join(["python", "benchmarks/end_to_end.py", *sys.argv[1:]])
    commit = short_commit()
    skipped = [r.rows for r in results if r.rows > args.records_max_rows]
    note = (
        f"\n- RECORDs not run at {', '.join(f'{rows:,}' for rows in skipped)} rows "
        f"(`--records-max-rows {args.records_max_rows}`)"
        if skipped and "records" in args.variants.split(",")
        else ""
    )
    tables = "\n\n".join(size_table(result) for result in results)
    recommended = ", ".join(
        f"{name}: {value}" for name, value in RECOMMENDED.target.items()
    )
    return f"""{SECTION}

- date: {now}; the whole run took {took / 60:.1f} min; commit {commit or "?"}
- machine: {os.cpu_count()} CPUs (nproc), {platform.machine()}, \
Python {platform.python_version()}, {platform.system()} {platform.release()}
- command: `{command}` (`make bench` runs it with the defaults, after bench.py)
- `meltano run tap-oktopost target-postgres` in the `test` environment into the
  PostgreSQL of scripts/postgres.sh, each run from no state into a fresh schema;
  variants run {args.repeats} times (RECORDs once) in rotating order with the tap
  alone and the floor; ratios are against the tap alone (RECORDs to /dev/null) of
  the same run
- recommended (docs/batch-and-performance.md's configuration): BATCH files
  `compression: {RECOMMENDED.compression}`, `batch_size: {RECOMMENDED.batch_size}`;
  target-postgres {recommended}
- peak RSS: `VmHWM` of the tap's and the target's processes polled every 0.1 s
  (Meltano's own process not counted); the tap alone and the parts: `ru_maxrss`
  (benchmarks/measure.py){note}

{tables}

Every run:

{every_run(results)}
"""


def write_section(path: Path, text: str) -> None:
    """Put the section in the results file, replacing the earlier one if any.

    The sections after it (api_budget.py's) are kept.
    """
    document = path.read_text(encoding="utf-8") if path.exists() else ""
    before, _, rest = document.partition(f"\n{SECTION}\n")
    after = rest.partition("\n## ")[2]
    kept = f"\n## {after}" if after else ""
    before = before.rstrip("\n")
    path.write_text(
        f"{before}\n\n{text}{kept}" if before else f"{text}{kept}", encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> None:
    """Measure every size and write the section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="300000,1000000", help="comma-separated row counts"
    )
    parser.add_argument(
        "--variants",
        default="records,gzip-10k,recommended",
        help=f"comma-separated, of: {', '.join(VARIANTS)}",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant")
    parser.add_argument(
        "--records-max-rows",
        type=int,
        default=300_000,
        help="largest size the RECORDs variant runs at (it takes minutes a size)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=BENCH_DIR / "results.md",
        help="the file whose End to end section is written (benchmarks/results.md)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tap-oktopost-e2e-") as temp:
        bench = EndToEnd(args, Path(temp))
        install_plugins(bench.meltano_env())
        results = [
            bench.run_size(int(size.replace("_", "")))
            for size in args.sizes.split(",")
            if size
        ]
    text = section(results, args, time.perf_counter() - start)
    write_section(args.output, text)
    print(f"\n{text}\nwritten to {args.output}")


if __name__ == "__main__":
    main()

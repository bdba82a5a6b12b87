"""End to end: `meltano run tap-oktopost target-postgres`, RECORDs against BATCH files.

It serves one generated posts export (``bench.write_archive``) through the local
stand-in and runs the project's `test` pipeline into the PostgreSQL of
scripts/postgres.sh: once with RECORD messages (target defaults), then with BATCH
files (gzip JSON lines, target-postgres ``use_copy``) for each ``--batch-sizes``.
Each run loads into a fresh schema; wall time is Meltano's whole run, and the peak
RSS of the tap and of the target is their ``VmHWM`` from ``/proc``, polled every
0.1 s over Meltano's process tree. For the tap alone, the floor (benchmarks/floor.py)
and the tap with stdout to /dev/null are run through benchmarks/measure.py.
Nothing asserts on time; the machine is shared. Needs `meltano install` done and
``bash scripts/postgres.sh start``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench import EXPORT_ID, ROOT, posts_export, write_archive

from tests.oktopost_stand_in import OktopostStandIn

MELTANO = Path(sys.executable).parent / "meltano"
POSTGRES_PORT = "55432"


@dataclass
class Result:
    """One measured run."""

    label: str
    seconds: float
    tap_mb: float
    target_mb: float | None
    rows: int | None = None


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


def measured(command: list[str], label: str, folder: Path) -> Result:
    """Run a command through benchmarks/measure.py, stdout to /dev/null."""
    errors = folder / f"{uuid.uuid4().hex}.err"
    done = subprocess.run(  # noqa: S603 - our own scripts
        [
            sys.executable,
            str(ROOT / "benchmarks" / "measure.py"),
            os.devnull,
            str(errors),
            "--",
            *command,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    if result["returncode"] != 0:
        sys.exit(f"{label} failed: {errors.read_text()[-4000:]}")
    return Result(label, result["seconds"], result["maxrss_kb"] / 1024, None)


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


def main(argv: list[str] | None = None) -> None:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--batch-sizes", default="10000,100000,300000")
    parser.add_argument("--skip-records", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.batch_sizes.split(",") if size]
    with tempfile.TemporaryDirectory() as temp, OktopostStandIn() as stand_in:
        folder = Path(temp)
        archive = folder / "posts.zip"
        write_archive(archive, args.rows, seed=20261127)
        stand_in.add_export(posts_export(archive.read_bytes()))
        config = folder / "config.json"
        config.write_text(
            json.dumps(
                {
                    "account_id": stand_in.account_id,
                    "api_key": stand_in.api_key,
                    "base_url": stand_in.base_url,
                }
            )
        )
        results = [
            measured(
                [
                    sys.executable,
                    str(ROOT / "benchmarks" / "floor.py"),
                    str(config),
                    EXPORT_ID,
                ],
                "floor (bare Python, stdout to /dev/null)",
                folder,
            ),
            measured(
                [sys.executable, "-m", "tap_oktopost", "--config", str(config)],
                "tap alone, RECORDs to /dev/null",
                folder,
            ),
        ]
        base_env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TAP_OKTOPOST_", "TARGET_", "MELTANO_", "PG"))
        }
        base_env.update(
            {
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "MELTANO_DATABASE_URI": f"sqlite:///{folder / 'meltano.db'}",
                "TARGET_POSTGRES_PORT": POSTGRES_PORT,
                "TAP_OKTOPOST_BASE_URL": stand_in.base_url,
                "TAP_OKTOPOST_ACCOUNT_ID": stand_in.account_id,
                "TAP_OKTOPOST_API_KEY": stand_in.api_key,
            }
        )
        runs: list[tuple[str, dict[str, str]]] = []
        if not args.skip_records:
            runs.append(("meltano run, RECORDs", {}))
        for size in sizes:
            batch_config = {
                "encoding": {"format": "jsonl", "compression": "gzip"},
                "storage": {"root": (folder / "batches").as_uri()},
                "batch_size": size,
            }
            runs.append(
                (
                    f"meltano run, BATCH of {size:,} rows, use_copy",
                    {
                        "TAP_OKTOPOST_BATCH_CONFIG": json.dumps(batch_config),
                        "TARGET_POSTGRES_USE_COPY": "true",
                    },
                )
            )
        for label, extra in runs:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            env = {
                **base_env,
                **extra,
                "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
            }
            try:
                result = meltano_run(env, label, schema)
                result.rows = int(
                    psql(base_env, f'select count(*) from "{schema}".posts')  # noqa: S608
                )
                results.append(result)
            finally:
                psql(base_env, f'drop schema if exists "{schema}" cascade')
    print(f"{args.rows:,} rows, one export, one CSV file\n")
    print(
        "| run | wall s | tap peak RSS MB | target peak RSS MB | rows in PostgreSQL |"
    )
    print("|---|---:|---:|---:|---:|")
    for result in results:
        target = "" if result.target_mb is None else f"{result.target_mb:.0f}"
        seconds, tap = f"{result.seconds:.1f}", f"{result.tap_mb:.0f}"
        rows = "" if result.rows is None else f"{result.rows:,}"
        print(f"| {result.label} | {seconds} | {tap} | {target} | {rows} |")


if __name__ == "__main__":
    main()

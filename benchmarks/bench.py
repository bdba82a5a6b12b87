"""Benchmark a full tap-oktopost sync against the floor, at two sizes (issue 4).

For each size it generates a posts-like export archive, serves it through the local
Oktopost stand-in, and times, in fresh processes with stdout to /dev/null:

- ``floor``: ``benchmarks/floor.py``, a bare download + ``csv.DictReader`` +
  ``json.dumps`` loop, the cost any tap must pay;
- ``catalog``: ``python -m tap_oktopost --config cfg.json --catalog catalog.json``,
  what Meltano runs (the catalog comes from a prior ``--discover``);
- ``discover+sync``: ``python -m tap_oktopost --config cfg.json``, which discovers in
  the same process.

The three are run in rotating order ``--repeats`` times and the medians are reported,
because the machine is shared and noisy. Peak RSS comes from ``os.wait4`` in a fresh
helper process per run (see ``benchmarks/measure.py`` for why). Nothing here asserts
on time. Run ``make bench`` or ``python benchmarks/bench.py --help``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import io
import json
import os
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.stand_ins.oktopost_stand_in

from tests.stand_ins.oktopost_stand_in import OktopostStandIn, StandInExport  # noqa: E402

EXPORT_ID = "032000000000201"
MEMBER = "2026-11-27-Posts.csv"
ARCHIVE_NAME = "2026-11-27-Posts-Report.zip"
RUN_DATE = "2026-11-27 10:00:00"
STREAM = "posts"
KINDS = ("floor", "catalog", "discover+sync")
HEADER = [
    "Post ID",
    "Network",
    "Message",
    "Campaign",
    "Clicks",
    "Impressions",
    "Likes",
    "Engagement Rate",
    "Is Boosted",
    "Created At",
    "Publish Date",
]
NETWORKS = ["LinkedIn", "Twitter", "Facebook", "Instagram", "YouTube"]
CAMPAIGNS = ["Q4 Launch", "Webinar: Data, Done Right", "Holiday Push", "", ""]
FRAGMENTS = [
    "Join our webinar, register today!",
    'Our CEO says: "Automation wins"',
    'Top 5 tips, tricks, and "hacks" for B2B',
    "Café talk: Grüße from the Berlin team",
    "New whitepaper out now",
    "See the full report at https://acme.com/report?utm_source=oktopost",
    "#B2B #marketing, #advocacy",
    "Line one of the post\nLine two, after a newline",
]
_METRIC = re.compile(r"METRIC: (\{.*\})")


# -- data ----------------------------------------------------------------------


def posts_row(rng: random.Random) -> list[str]:
    """Give one posts-like row: strings, integers, decimals, booleans, dates, blanks."""
    created = datetime.datetime(2026, 10, 28) + datetime.timedelta(
        minutes=5 * rng.randrange(8640)
    )
    message = " ".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 3)))
    return [
        f"{rng.randrange(1, 2_000_000):07d}",
        rng.choice(NETWORKS),
        message,
        rng.choice(CAMPAIGNS),
        str(rng.randrange(0, 5000)),
        str(rng.randrange(100, 200_000)),
        "" if rng.random() < 0.1 else str(rng.randrange(0, 900)),
        f"{rng.random() * 0.25:.4f}",
        "true" if rng.random() < 0.3 else "false",
        created.strftime("%Y-%m-%d %H:%M:%S"),
        created.date().isoformat(),
    ]


def posts_export(archive: bytes) -> StandInExport:
    """Describe the one active export the benchmarks serve."""
    return StandInExport(
        id=EXPORT_ID,
        type="Posts",
        last_run_date=RUN_DATE,
        archive=archive,
        archive_name=ARCHIVE_NAME,
    )


def write_archive(path: Path, rows: int, seed: int) -> int:
    """Write a ZIP holding one posts CSV (BOM, CRLF) of `rows` rows; give CSV bytes.

    Rows are streamed into the deflated member, so memory stays flat at any size.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    info = zipfile.ZipInfo(MEMBER, date_time=(2026, 11, 27, 10, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open(info, "w", force_zip64=rows > 5_000_000) as member,
        io.TextIOWrapper(member, encoding="utf-8", newline="") as text,
    ):
        text.write("\ufeff")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(HEADER)
        for _ in range(rows):
            writer.writerow(posts_row(rng))
    with zipfile.ZipFile(path) as archive:
        return archive.getinfo(MEMBER).file_size


# -- measuring -----------------------------------------------------------------


@dataclass
class Run:
    """One measured process run."""

    kind: str
    seconds: float
    cpu_seconds: float
    maxrss_kb: int
    helper_hwm_kb: int
    polled_hwm_kb: int
    records: int | None = None
    downloads: int | None = None
    bytes_downloaded: int | None = None
    code: str = ""


@dataclass
class SizeResult:
    """Everything measured at one size."""

    rows: int
    csv_bytes: int
    archive_bytes: int
    generate_seconds: float
    discover: Run
    discover_bytes: int
    sampled: Run | None = None
    """A discovery sampling the archive by Range (whole_file_discovery_bytes 0)."""
    sampled_bytes: int = 0
    verified_records: int = 0
    runs: list[Run] = field(default_factory=list)

    def of(self, kind: str) -> list[Run]:
        """Give the runs of one kind."""
        return [run for run in self.runs if run.kind == kind]

    def median_seconds(self, kind: str) -> float:
        """Give the median wall time of one kind."""
        return statistics.median(run.seconds for run in self.of(kind))

    def median_cpu(self, kind: str) -> float:
        """Give the median CPU time (user + system) of one kind."""
        return statistics.median(run.cpu_seconds for run in self.of(kind))

    def peak_mb(self, kind: str) -> float:
        """Give the largest peak RSS of one kind's runs, in MiB."""
        return max(run.maxrss_kb for run in self.of(kind)) / 1024


def record_count(stderr_text: str, stream: str) -> int | None:
    """Sum the SDK's `record_count` metrics of one stream; None if none were logged."""
    total = None
    for match in _METRIC.finditer(stderr_text):
        try:
            point = json.loads(match.group(1))
        except ValueError:
            continue
        if (
            point.get("metric") == "record_count"
            and point.get("tags", {}).get("stream") == stream
        ):
            total = (total or 0) + int(point.get("value", 0))
    return total


def floor_count(stderr_text: str) -> int | None:
    """Read the record count the floor program prints at its end."""
    found = re.search(r"floor: (\d+) records", stderr_text)
    return int(found.group(1)) if found else None


_RECORD_OF_STREAM = re.compile(
    rb'"type"\s*:\s*"RECORD"\s*,\s*"stream"\s*:\s*"' + STREAM.encode() + rb'"'
)


def count_records(command: list[str], stderr: Path) -> tuple[int, int]:
    """Run a tap with stdout piped here; give its exit code and RECORD lines of STREAM.

    Timed runs write to /dev/null, and a tap may write records itself, beside the
    SDK's `record_count` metric; this untimed run checks what really goes out.
    """
    count = 0
    with stderr.open("wb") as err:
        tap = subprocess.Popen(  # noqa: S603
            command, stdout=subprocess.PIPE, stderr=err, cwd=ROOT
        )
        assert tap.stdout is not None  # noqa: S101 - for mypy: stdout is a pipe
        for line in tap.stdout:
            if _RECORD_OF_STREAM.search(line, 0, 120):
                count += 1
        return tap.wait(), count


@dataclass
class Attempts:
    """How often, and after how long a wait, a failed run is tried again."""

    retries: int
    wait: float


def measure(
    kind: str,
    command: list[str],
    files: tuple[Path, Path],
    expected: int | None,
    attempts: Attempts,
) -> Run:
    """Run a command through a fresh `measure.py` helper, retrying if it fails.

    A run fails when it exits non-zero, or is the floor and counts other than
    `expected` records (the tap's count is checked by `Bench.verify`). It is shown
    (stderr's tail) and tried again after a wait, because the tap's code may be
    mid-edit while the benchmark runs.
    """
    stdout, stderr = files
    helper = [sys.executable, str(BENCH_DIR / "measure.py"), str(stdout), str(stderr)]
    for attempt in range(attempts.retries + 1):
        code = code_hash()
        done = subprocess.run(  # noqa: S603
            [*helper, "--", *command],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        result = json.loads(done.stdout)
        text = stderr.read_text(encoding="utf-8", errors="replace")
        records = floor_count(text) if kind == "floor" else record_count(text, STREAM)
        if result["returncode"] != 0:
            problem = f"exit {result['returncode']}"
        elif expected is not None and kind == "floor" and records != expected:
            problem = f"{records} records instead of {expected}"
        else:
            return Run(
                kind=kind,
                seconds=result["seconds"],
                cpu_seconds=result["cpu_seconds"],
                maxrss_kb=result["maxrss_kb"],
                helper_hwm_kb=result["helper_hwm_kb"],
                polled_hwm_kb=result["polled_hwm_kb"],
                records=records,
                code=code,
            )
        print(f"  {kind} failed ({problem}):\n{text[-3000:]}", flush=True)
        if attempt == attempts.retries:
            message = f"{kind} failed ({problem}): {shlex.join(command)}"
            raise SystemExit(message)
        print(f"  trying again in {attempts.wait:g} s", flush=True)
        time.sleep(attempts.wait)
    raise AssertionError  # unreachable: the loop returns or raises


def select_all(catalog: dict[str, Any]) -> dict[str, Any]:
    """Mark every stream selected, as Meltano's default `select: ['*.*']` does."""
    for entry in catalog["streams"]:
        for item in entry.get("metadata", []):
            if item.get("breadcrumb") == []:
                item["metadata"]["selected"] = True
    return catalog


class Bench:
    """Runs the measurements of every size in one working folder."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.tap = [sys.executable, "-m", "tap_oktopost"]

    def run_size(self, rows: int) -> SizeResult:
        """Generate, serve and measure one size."""
        archive_path = self.workdir / f"posts-{rows}.zip"
        print(f"== {rows:,} rows: generating {archive_path.name}", flush=True)
        start = time.perf_counter()
        csv_bytes = write_archive(archive_path, rows, self.args.seed)
        generate_seconds = time.perf_counter() - start
        archive = archive_path.read_bytes()
        archive_bytes = len(archive)
        archive_path.unlink()
        print(
            f"   {csv_bytes / 2**20:.0f} MiB of CSV, {len(archive) / 2**20:.1f} MiB "
            f"zipped, in {generate_seconds:.0f} s",
            flush=True,
        )
        with OktopostStandIn() as stand_in:
            stand_in.add_export(posts_export(archive))
            del archive
            result = self._measure_size(stand_in, rows, csv_bytes, archive_bytes)
        result.generate_seconds = generate_seconds
        return result

    def _measure_size(
        self, stand_in: OktopostStandIn, rows: int, csv_bytes: int, archive_bytes: int
    ) -> SizeResult:
        settings = {
            "base_url": stand_in.base_url,
            "account_id": stand_in.account_id,
            "api_key": stand_in.api_key,
            # Every run downloads what it reads, as the floor does.
            "archive_cache_bytes": 0,
        }
        config = self.workdir / "config.json"
        config.write_text(json.dumps(settings), encoding="utf-8")
        sampling = self.workdir / "sampling.json"
        sampling.write_text(
            json.dumps({**settings, "whole_file_discovery_bytes": 0}), encoding="utf-8"
        )
        discovered = self.workdir / "discovered.json"
        stand_in.reset_log()
        sampled = self._measure(
            "discover-sampled",
            [*self.tap, "--config", str(sampling), "--discover"],
            Path(os.devnull),
            None,
        )
        sampled.bytes_downloaded = stand_in.bytes_served
        sampled.downloads = len(stand_in.downloads())
        stand_in.reset_log()
        discover = self._measure(
            "discover",
            [*self.tap, "--config", str(config), "--discover"],
            discovered,
            None,
        )
        discover_bytes = stand_in.bytes_served
        discover.bytes_downloaded = discover_bytes
        discover.downloads = len(stand_in.downloads())
        catalog = self.workdir / "catalog.json"
        catalog_dict = json.loads(discovered.read_text(encoding="utf-8"))
        catalog.write_text(json.dumps(select_all(catalog_dict)), encoding="utf-8")
        for name, run in (("whole file", discover), ("sampled", sampled)):
            print(
                f"   discover ({name}): {run.seconds:.1f} s, downloaded "
                f"{run.bytes_downloaded:,} of {archive_bytes:,} archive bytes",
                flush=True,
            )
        result = SizeResult(
            rows=rows,
            csv_bytes=csv_bytes,
            archive_bytes=archive_bytes,
            generate_seconds=0.0,
            discover=discover,
            discover_bytes=discover_bytes,
            sampled=sampled,
            sampled_bytes=sampled.bytes_downloaded,
        )
        result.verified_records = self.verify(
            [*self.tap, "--config", str(config), "--catalog", str(catalog)], rows
        )
        commands = {
            "floor": [
                sys.executable,
                str(BENCH_DIR / "floor.py"),
                str(config),
                EXPORT_ID,
                STREAM,
            ],
            "catalog": [*self.tap, "--config", str(config), "--catalog", str(catalog)],
            "discover+sync": [*self.tap, "--config", str(config)],
        }
        for repeat in range(self.args.repeats):
            shift = repeat % len(KINDS)
            for kind in KINDS[shift:] + KINDS[:shift]:
                stand_in.reset_log()
                run = self._measure(kind, commands[kind], Path(os.devnull), rows)
                run.downloads = len(stand_in.downloads())
                run.bytes_downloaded = stand_in.bytes_served
                result.runs.append(run)
                print(
                    f"   {repeat + 1}/{self.args.repeats} {kind:<14}"
                    f"{run.seconds:7.1f} s  cpu {run.cpu_seconds:6.1f} s  "
                    f"rss {run.maxrss_kb / 1024:6.0f} MiB  "
                    f"{'records' if kind == 'floor' else 'record_count metric'} "
                    f"{run.records}",
                    flush=True,
                )
        return result

    def verify(self, command: list[str], rows: int) -> int:
        """Count the RECORD lines of one untimed catalog sync; retry a wrong count."""
        stderr = self.workdir / "verify.stderr"
        for attempt in range(self.args.retries + 1):
            returncode, count = count_records(command, stderr)
            if returncode == 0 and count == rows:
                print(f"   verified: {count:,} {STREAM} records out", flush=True)
                return count
            text = stderr.read_text(encoding="utf-8", errors="replace")[-3000:]
            problem = f"exit {returncode}, {count:,} records of {rows:,}"
            print(f"  verification failed ({problem}):\n{text}", flush=True)
            if attempt < self.args.retries:
                print(f"  trying again in {self.args.retry_wait:g} s", flush=True)
                time.sleep(self.args.retry_wait)
        message = f"the tap does not deliver {rows:,} records: {shlex.join(command)}"
        raise SystemExit(message)

    def _measure(
        self, kind: str, command: list[str], stdout: Path, expected: int | None
    ) -> Run:
        stderr = self.workdir / f"{kind.replace('+', '-')}.stderr"
        attempts = Attempts(self.args.retries, self.args.retry_wait)
        return measure(kind, command, (stdout, stderr), expected, attempts)


# -- reporting -----------------------------------------------------------------


def table(results: list[SizeResult]) -> str:
    """Give the markdown table of the medians."""
    lines = [
        "| archive MiB (CSV MiB) | rows | floor s | tap s (catalog) "
        "| tap s (discover+sync) | ratio catalog / floor "
        "| ratio discover+sync / floor | records/s catalog (floor) "
        "| peak RSS MiB catalog / discover+sync / floor | discovery bytes % "
        "| downloads per catalog sync | records out (verified) |",
        "|" + "---:|" * 12,
    ]
    for r in results:
        floor, cat, both = (r.median_seconds(kind) for kind in KINDS)
        downloads = sorted({run.downloads for run in r.of("catalog")}, key=str)
        lines.append(
            f"| {r.archive_bytes / 2**20:.1f} ({r.csv_bytes / 2**20:.0f}) "
            f"| {r.rows:,} | {floor:.1f} | {cat:.1f} | {both:.1f} "
            f"| {cat / floor:.1f} | {both / floor:.1f} "
            f"| {r.rows / cat:,.0f} ({r.rows / floor:,.0f}) "
            f"| {r.peak_mb('catalog'):.0f} / {r.peak_mb('discover+sync'):.0f} "
            f"/ {r.peak_mb('floor'):.0f} "
            f"| {100 * r.discover_bytes / r.archive_bytes:.2f} "
            f"| {', '.join(map(str, downloads))} | {r.verified_records:,} |"
        )
    return "\n".join(lines)


def discovery_table(results: list[SizeResult]) -> str:
    """Give what one `--discover` costs, typing from whole files and from samples."""
    lines = [
        "| archive MiB (CSV MiB) | rows | discovery s, whole file | bytes read % "
        "| CPU s | discovery s, sampled by Range | bytes read % | CPU s |",
        "|" + "---:|" * 8,
    ]
    for r in results:
        sampled = r.sampled or r.discover
        lines.append(
            f"| {r.archive_bytes / 2**20:.1f} ({r.csv_bytes / 2**20:.0f}) "
            f"| {r.rows:,} | {r.discover.seconds:.1f} "
            f"| {100 * r.discover_bytes / r.archive_bytes:.2f} "
            f"| {r.discover.cpu_seconds:.1f} | {sampled.seconds:.1f} "
            f"| {100 * r.sampled_bytes / r.archive_bytes:.2f} "
            f"| {sampled.cpu_seconds:.1f} |"
        )
    return "\n".join(lines)


def details(results: list[SizeResult]) -> str:
    """Give every run's numbers, for a reader who distrusts medians."""
    lines = [
        "| rows | run | wall s | CPU s | maxrss MiB | polled VmHWM MiB "
        "| helper MiB | records (floor: its count; tap: SDK metric) "
        "| downloads | bytes downloaded | code |",
        "|" + "---:|" * 11,
    ]
    for r in results:
        for run in [r.discover, *filter(None, [r.sampled]), *r.runs]:
            downloaded = run.bytes_downloaded
            bytes_text = "" if downloaded is None else f"{downloaded:,}"
            lines.append(
                f"| {r.rows:,} | {run.kind} | {run.seconds:.2f} "
                f"| {run.cpu_seconds:.2f} | {run.maxrss_kb / 1024:.0f} "
                f"| {run.polled_hwm_kb / 1024:.0f} | {run.helper_hwm_kb / 1024:.0f} "
                f"| {'' if run.records is None else run.records} "
                f"| {'' if run.downloads is None else run.downloads} | {bytes_text} "
                f"| {run.code} |"
            )
    return "\n".join(lines)


def cpu_table(results: list[SizeResult]) -> str:
    """Give median CPU seconds, steadier than wall time on a shared machine."""
    lines = [
        "| rows | floor CPU s | catalog CPU s | discover+sync CPU s "
        "| catalog / floor (CPU) | generate s |",
        "|" + "---:|" * 6,
    ]
    for r in results:
        floor, cat, both = (r.median_cpu(kind) for kind in KINDS)
        lines.append(
            f"| {r.rows:,} | {floor:.1f} | {cat:.1f} | {both:.1f} "
            f"| {cat / floor:.1f} | {r.generate_seconds:.0f} |"
        )
    return "\n".join(lines)


def code_hash() -> str:
    """Give a short hash of the tap's source files, which may change under a run."""
    digest = hashlib.sha256()
    package = ROOT / "tap_oktopost"
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def short_commit() -> str:
    """Give the checkout's commit, short."""
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()


def code_version(results: list[SizeResult]) -> str:
    """Name the tap code measured: the commit, and the hashes of the working files."""
    commit = short_commit()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "tap_oktopost"],  # noqa: S607
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    hashes = list(
        dict.fromkeys(
            run.code for r in results for run in [r.discover, *r.runs] if run.code
        )
    )
    text = (
        f"commit {commit or '?'}{' with uncommitted tap changes' if dirty else ''}, "
        f"tap_oktopost/**/*.py sha256 {', '.join(hashes)}"
    )
    if len(hashes) > 1:
        text += (
            " -- **the tap's code changed during this run**: compare rows measured "
            "with the same hash only (see the code column below)"
        )
    return text


def report(results: list[SizeResult], args: argparse.Namespace, took: float) -> str:
    """Give the whole results document."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join(["python", "benchmarks/bench.py", *sys.argv[1:]])
    return f"""# tap-oktopost benchmark

- date: {now}; the whole run took {took / 60:.1f} min
- machine: {os.cpu_count()} CPUs (nproc), {platform.machine()}, \
Python {platform.python_version()}, {platform.system()} {platform.release()}
- code: {code_version(results)}
- command: `{command}` (`make bench` runs it with the defaults)
- medians of {args.repeats} runs of each kind, run in rotating order; stdout to
  /dev/null; the stand-in serves the archive on 127.0.0.1 from the benchmark process
- floor: `benchmarks/floor.py`; catalog: `python -m tap_oktopost --config cfg.json
  --catalog catalog.json` (catalog from `--discover`, every stream selected);
  discover+sync: `python -m tap_oktopost --config cfg.json`
- peak RSS: `ru_maxrss` from `os.wait4` in a fresh helper process per run, largest
  of the runs (see `benchmarks/measure.py`; the helper's own ~10 MiB is the lower
  bound of what it can report)
- discovery bytes %: archive bytes the storage served during one `--discover`,
  against the archive's size; every run with `archive_cache_bytes` 0, so that each
  downloads what it reads

{table(results)}

What one `--discover` reads and costs: typing every row (archives up to
`whole_file_discovery_bytes`, the default) and sampling 2,000 rows a file by Range
(`whole_file_discovery_bytes` 0):

{discovery_table(results)}

Median CPU time (user + system of the measured process):

{cpu_table(results)}

Every run:

{details(results)}
"""


def write_keeping_end_to_end(path: Path, document: str) -> None:
    """Write the results, keeping the end_to_end.py section an earlier run wrote."""
    heading = "\n## End to end\n"
    earlier = path.read_text(encoding="utf-8") if path.exists() else ""
    kept = earlier.partition(heading)[2]
    text = f"{document.rstrip()}\n{heading}{kept}" if kept else document
    path.write_text(text, encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        default=1_000_000,
        help="rows of the first size; the second is 4x (default 1,000,000)",
    )
    parser.add_argument(
        "--sizes",
        help="comma-separated row counts, replacing --rows (e.g. 1000000,4000000)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind")
    parser.add_argument("--seed", type=int, default=20261127, help="data seed")
    parser.add_argument(
        "--output",
        type=Path,
        default=BENCH_DIR / "results.md",
        help="where to write the results (default benchmarks/results.md)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=3,
        help="times a failed run is tried again, for a tap mid-edit (default 3)",
    )
    parser.add_argument(
        "--retry-wait",
        type=float,
        default=60.0,
        help="seconds to wait before trying a failed run again (default 60)",
    )
    args = parser.parse_args(argv)
    if args.sizes:
        args.size_list = [int(size.replace("_", "")) for size in args.sizes.split(",")]
    else:
        args.size_list = [args.rows, 4 * args.rows]
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure every size and write the report."""
    args = parse_args(argv)
    start = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="tap-oktopost-bench-") as folder:
        bench = Bench(args, Path(folder))
        for rows in args.size_list:
            results.append(bench.run_size(rows))
    document = report(results, args, time.perf_counter() - start)
    write_keeping_end_to_end(args.output, document)
    print()
    print(table(results))
    print()
    print(discovery_table(results))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()

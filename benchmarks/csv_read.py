"""Time the CSV read path on a posts-like file: parsing, type scan, record building.

Usage: ``python benchmarks/csv_read.py [ROWS]`` (default 1,000,000). It writes the
CSV (BOM, CRLF) to a temporary folder and prints the best of three runs (wall and
CPU seconds; the machine may be shared) of:

- ``csv parse``: ``csv.reader`` over the decoded text, nothing else (the floor);
- ``scan_member``: decoding decision + types of every column over every row;
- ``records``: ``CsvSource`` + ``RecordBuilder`` over the scanned types, as a sync;

"""

from __future__ import annotations

import csv
import io
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bench import HEADER, posts_row

from tap_oktopost.tables.csv_data import CsvSource, RecordBuilder, scan_member

if TYPE_CHECKING:
    from collections.abc import Callable

METADATA = {
    "export_id": "032000000000201",
    "sync_timestamp": "2026-11-29T00:00:00+00:00",
    "_sdc_source_file": "2026-11-27-Posts.csv",
    "_sdc_export_run_at": "2026-11-27T10:00:00+00:00",
}


def write_csv(path: Path, rows: int, seed: int = 20261127) -> None:
    """Write the posts-like CSV the tap's benchmark archives hold."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    with path.open("w", encoding="utf-8", newline="") as text:
        text.write("\ufeff")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(HEADER)
        for _ in range(rows):
            writer.writerow(posts_row(rng))


def best_of(runs: int, work: Callable[[], Any]) -> tuple[str, Any]:
    """Give the fastest of `runs` timings (wall and CPU seconds) and the result."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return f"{min(walls):6.2f} s (CPU {min(cpus):6.2f} s)", result


def main(argv: list[str]) -> None:
    """Write the file and time each step."""
    rows = int(argv[0]) if argv else 1_000_000
    with tempfile.TemporaryDirectory(prefix="tap-oktopost-csv-") as folder:
        path = Path(folder) / "posts.csv"
        write_csv(path, rows)

        def open_member() -> IO[bytes]:
            return path.open("rb")

        def parse() -> int:
            with open_member() as binary:
                text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
                return sum(1 for _ in csv.reader(text))

        def scan() -> Any:
            return scan_member(open_member)

        seconds, found = best_of(3, parse)
        print(f"csv parse     {seconds}  ({found - 1:,} rows)")
        seconds, result = best_of(3, scan)
        types = ", ".join(t.value for t in result.types)
        print(f"scan_member   {seconds}  ({types})")

        def build() -> int:
            with open_member() as binary:
                source = CsvSource(binary, decoding=result.decoding)
                source.header()
                builder = RecordBuilder(result.names, result.types, METADATA)
                count = 0
                for count, _ in enumerate(builder.records(source.rows), start=1):  # noqa: B007
                    pass
                return count

        seconds, built = best_of(3, build)
        print(f"records       {seconds}  ({built:,} records)")


if __name__ == "__main__":
    main(sys.argv[1:])

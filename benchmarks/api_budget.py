"""The API budget of one Meltano-style run: discovery, then the sync, two processes.

An account of ``--exports`` active exports (one small CSV each) is served by the
local stand-in on pages of 25, with Oktopost's rate limit: HTTP 429 past 60 calls
in any sliding 60 s (``OktopostStandIn.rate_limit``). The tap runs as Meltano runs
it: ``--discover`` in one process, then the sync with that catalog in another,
right after. Both share a fresh temporary folder (``TMPDIR``), where the throttle
keeps its call log. The API calls of each process, the 429s, the wall time and the
records are counted, and the figures go into the "API budget" section of
``--output`` (benchmarks/results.md), replacing the earlier one. At the real window
the run takes minutes: `make bench` runs it, `make test` does not.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.stand_ins.oktopost_stand_in

from bench import select_all, short_commit  # noqa: E402

from tests.stand_ins.oktopost_stand_in import OktopostStandIn, StandInExport, make_zip  # noqa: E402

SECTION = "## API budget"
"""The heading of the section this script owns in the results file."""
PAGE_SIZE = 25
ROWS = 5


@dataclass
class Phase:
    """One tap process: its API calls by kind, its 429s and its wall time."""

    name: str
    seconds: float
    calls: Counter[str]
    rate_limited: int
    returncode: int

    @property
    def total(self) -> int:
        """The process's API calls."""
        return sum(self.calls.values())


def account(stand_in: OktopostStandIn, exports: int) -> None:
    """Active exports, each with one run of a small CSV file."""
    for number in range(1, exports + 1):
        rows = "".join(f"{number}-{row},{row}\n" for row in range(ROWS))
        stand_in.add_export(
            StandInExport(
                id=f"032{number:012d}",
                last_run_date="2026-11-27 10:00:00",
                archive=make_zip({"Posts.csv": "post_id,clicks\n" + rows}),
            )
        )


def run_phase(
    name: str,
    command: list[str],
    stand_in: OktopostStandIn,
    env: dict[str, str],
    stdout: Path,
) -> Phase:
    """Run one tap process and count the API calls it made."""
    stand_in.reset_log()
    limited = stand_in.rate_limited
    started = time.perf_counter()
    with stdout.open("wb") as out:
        done = subprocess.run(  # noqa: S603 - our own tap, our own arguments
            command, stdout=out, stderr=subprocess.PIPE, env=env, check=False
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode(errors="replace")[-3000:])
    calls = Counter(
        "pages" if request.path.startswith("/v2/bi-export?") else "details"
        for request in stand_in.api_calls()
    )
    return Phase(name, seconds, calls, stand_in.rate_limited - limited, done.returncode)


def records_of(path: Path) -> int:
    """Count the RECORDs of the posts table the sync sent."""
    messages = (
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
    )
    return sum(
        1
        for message in messages
        if message.get("type") == "RECORD" and message.get("stream") == "posts"
    )


def measure(args: argparse.Namespace, folder: Path) -> tuple[list[Phase], int]:
    """Discover, then sync with the catalog, as two processes."""
    with OktopostStandIn(page_size=PAGE_SIZE) as stand_in:
        account(stand_in, args.exports)
        stand_in.rate_limit(args.calls, args.window)
        config = folder / "config.json"
        config.write_text(
            json.dumps(
                {
                    "account_id": stand_in.account_id,
                    "api_key": stand_in.api_key,
                    "base_url": stand_in.base_url,
                    "rate_limit_wait_seconds": args.rate_limit_wait,
                }
            )
        )
        logs = folder / "tmp"
        logs.mkdir()
        env = {
            **{
                k: v for k, v in os.environ.items() if not k.startswith("TAP_OKTOPOST_")
            },
            "TMPDIR": str(logs),
        }
        tap = [sys.executable, "-m", "tap_oktopost", "--config", str(config)]
        catalog = folder / "catalog.json"
        discovery = run_phase("discovery", [*tap, "--discover"], stand_in, env, catalog)
        catalog.write_text(json.dumps(select_all(json.loads(catalog.read_text()))))
        sync = run_phase(
            "sync",
            [*tap, "--catalog", str(catalog)],
            stand_in,
            env,
            folder / "sync.jsonl",
        )
    return [discovery, sync], records_of(folder / "sync.jsonl")


def section(
    phases: list[Phase], records: int, args: argparse.Namespace, took: float
) -> str:
    """Give the results file's API budget section."""
    now = datetime.datetime.now(datetime.timezone.utc)
    pages = sum(phase.calls["pages"] for phase in phases)
    total = sum(phase.total for phase in phases)
    rows = "\n".join(
        f"| {phase.name} | {phase.calls['pages']} | {phase.calls['details']} | "
        f"{phase.total} | {phase.rate_limited} | {phase.seconds:.1f} | "
        f"{phase.returncode} |"
        for phase in phases
    )
    limited = sum(phase.rate_limited for phase in phases)
    seconds = sum(phase.seconds for phase in phases)
    machine = f"{platform.machine()}, Python {platform.python_version()}"
    minutes, commit = took / 60, short_commit()
    return f"""{SECTION}

- date: {now:%Y-%m-%d %H:%M} UTC; the whole run took {minutes:.1f} min; commit {commit}
- machine: {os.cpu_count()} CPUs, {machine}
- command: `python benchmarks/api_budget.py` (`make bench` runs it)
- {args.exports} active exports on pages of {PAGE_SIZE}; the stand-in answers 429 past
  {args.calls} calls in any sliding {args.window:g} s; the tap's `--discover`, then
  its sync with that catalog, as two processes (as `meltano run` does), sharing one
  temporary folder; rate_limit_wait_seconds {args.rate_limit_wait:g}

| process | listing pages | export details | API calls | HTTP 429 | wall s | exit |
|---|---:|---:|---:|---:|---:|---:|
{rows}
| both | {pages} | {total - pages} | {total} | {limited} | {seconds:.1f} | |

{total} calls for {args.exports} exports: {(total - pages) / args.exports:.2f} per
export plus {pages} pages (goal: at most 2 per export plus the pages, no 429); {limited}
answers of HTTP 429; {records:,} records of the {args.exports * ROWS:,} rows out.
Before, as issue 18 measured it, the same run made 323 calls and met HTTP 429 five
times (the sync listed every page twice, and each process counted its own calls).
"""


def write_section(path: Path, text: str) -> None:
    """Put the section in the results file, replacing the earlier one if any."""
    document = path.read_text(encoding="utf-8") if path.exists() else ""
    before, _, rest = document.partition(f"\n{SECTION}\n")
    after = rest.partition("\n## ")[2]
    kept = f"\n## {after}" if rest and after else ""
    path.write_text(f"{before.rstrip()}\n\n{text}{kept}", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Measure one discovery and sync, and write the section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=int, default=150, help="active exports")
    parser.add_argument("--calls", type=int, default=60, help="calls a window")
    parser.add_argument(
        "--window", type=float, default=60.0, help="the rate limit's window, seconds"
    )
    parser.add_argument(
        "--rate-limit-wait",
        type=float,
        default=60.0,
        help="the tap's rate_limit_wait_seconds, should a 429 come",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "benchmarks" / "results.md",
        help="the file whose API budget section is written",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tap-oktopost-budget-") as temp:
        phases, records = measure(args, Path(temp))
    text = section(phases, records, args, time.perf_counter() - start)
    write_section(args.output, text)
    print(f"\n{text}\nwritten to {args.output}")


if __name__ == "__main__":
    main()

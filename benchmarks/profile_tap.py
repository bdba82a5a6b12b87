"""Profile one tap-oktopost sync in-process with cProfile, stdout to /dev/null.

Usage: ``python benchmarks/profile_tap.py [--rows 200000] [--mode catalog]``

It serves a generated posts archive (the same data as ``bench.py``) through the local
stand-in, then profiles ``sync_all()`` of a tap given a catalog from a prior discovery
(``--mode catalog``, what Meltano runs), or the tap's construction, discovery
included, plus ``sync_all()`` (``--mode discover+sync``). It prints the top functions
by cumulative and by own time. The profiler's overhead inflates per-call costs of
small functions: compare shares, not absolute seconds, with ``bench.py``.

(Not named ``profile.py``: that would shadow the standard library module cProfile
imports.)
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import posts_export, select_all, write_archive

from tests.stand_ins.oktopost_stand_in import OktopostStandIn

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Send both `sys.stdout` and file descriptor 1 to /dev/null for a while.

    The new `sys.stdout` is an ordinary buffered text file, like a redirected
    stdout, so the SDK's flush after every message costs what it costs in a real run.
    """
    sys.stdout.flush()
    saved_fd = os.dup(1)
    saved_stdout = sys.stdout
    with open(os.devnull, "w", encoding="utf-8") as null:
        os.dup2(null.fileno(), 1)
        sys.stdout = null
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stdout = saved_stdout
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


def profile_sync(config: dict[str, Any], mode: str) -> cProfile.Profile:
    """Run one sync under cProfile and give the profile."""
    from tap_oktopost.tap import TapOktopost  # noqa: PLC0415 - after the path is set

    profiler = cProfile.Profile()
    if mode == "catalog":
        catalog = select_all(TapOktopost(config=config).catalog_dict)
        with stdout_to_devnull():
            profiler.enable()
            TapOktopost(config=config, catalog=catalog).sync_all()
            profiler.disable()
    else:
        with stdout_to_devnull():
            profiler.enable()
            TapOktopost(config=config).sync_all()
            profiler.disable()
    return profiler


def print_top(profiler: cProfile.Profile, top: int) -> None:
    """Print the top functions by cumulative and by own (total) time."""
    for order in ("cumulative", "tottime"):
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats(order).print_stats(top)
        print(f"\n===== top {top} by {order} =====")
        print(text.getvalue().split("\n", 1)[-1].strip("\n"))


def main(argv: list[str] | None = None) -> None:
    """Generate, serve, profile and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows to sync")
    parser.add_argument(
        "--mode", choices=("catalog", "discover+sync"), default="catalog"
    )
    parser.add_argument("--top", type=int, default=30, help="functions to show")
    parser.add_argument("--seed", type=int, default=20261127, help="data seed")
    parser.add_argument("--save", type=Path, help="also save the raw pstats here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tap-oktopost-profile-") as folder:
        archive_path = Path(folder) / "posts.zip"
        write_archive(archive_path, args.rows, args.seed)
        archive = archive_path.read_bytes()
    with OktopostStandIn() as stand_in:
        stand_in.add_export(posts_export(archive))
        config = {
            "base_url": stand_in.base_url,
            "account_id": stand_in.account_id,
            "api_key": stand_in.api_key,
        }
        start = time.perf_counter()
        profiler = profile_sync(config, args.mode)
        seconds = time.perf_counter() - start
    print(
        f"{args.mode} sync of {args.rows:,} rows under cProfile: {seconds:.1f} s "
        f"({args.rows / seconds:,.0f} records/s with profiling overhead)"
    )
    if args.save:
        profiler.dump_stats(args.save)
    print_top(profiler, args.top)


if __name__ == "__main__":
    main()

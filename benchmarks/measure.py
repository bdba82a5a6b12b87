"""Run one command and print its wall time, CPU time and peak RSS as JSON.

Usage: ``python benchmarks/measure.py STDOUT_PATH STDERR_PATH -- COMMAND...``

Run this helper as a fresh process for every measured command. Linux's
``ru_maxrss`` of a child is the larger of the child's own peak and the resident
size of the process that spawned it (``exec`` folds the spawner's memory high-water
mark into the child's), so a child spawned straight from a large benchmark process
inherits that process's size. This helper is small, and it reports its own
high-water mark (``helper_hwm_kb``): a ``maxrss_kb`` above that is the command's own
peak. ``polled_hwm_kb`` is a cross-check: the child's ``VmHWM`` read from ``/proc``
every 0.1 s while it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time


def vm_hwm_kb(pid: int | str) -> int:
    """Give a live process's memory high-water mark (``VmHWM``) in KiB, or 0."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


def main(argv: list[str]) -> int:
    """Run the command given after ``--`` and print one JSON line about it."""
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write(__doc__ or "")
        return 2
    stdout_path, stderr_path, command = argv[0], argv[1], argv[3:]
    helper_hwm = vm_hwm_kb("self")
    polled = [0]
    done = threading.Event()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err)  # noqa: S603

        def poll() -> None:
            while not done.wait(0.1):
                polled[0] = max(polled[0], vm_hwm_kb(child.pid))

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        poller.join()
    result = {
        "returncode": child.returncode,
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "maxrss_kb": usage.ru_maxrss,
        "helper_hwm_kb": helper_hwm,
        "polled_hwm_kb": polled[0],
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Demonstration sync: the local Oktopost stand-in, through Meltano, into DuckDB.

Runs `meltano run tap-oktopost target-duckdb` twice against demo exports served on
127.0.0.1 and prints, per stream, the records the tap sent (its `record_count`
metrics) and the rows read back from the database: the second run has no new export
run to load, so it sends no CSV row and the tables stay as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DATABASE = ROOT / "output" / "demo.duckdb"
DUCKDB_PYTHON = (
    ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python"
)
COUNT_ROWS = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
for (table,) in con.execute(
    "select table_name from information_schema.tables "
    "where table_schema = 'oktopost' order by table_name"
).fetchall():
    count = con.execute(f'select count(*) from oktopost."{table}"').fetchone()[0]
    print(f"  {table:<28} {count:>6} rows")
"""


def meltano(*args: str, env: dict[str, str]) -> None:
    """Run a Meltano command in the demo environment, failing the demo if it fails."""
    command = [str(BIN / "meltano"), "--environment=demo", "--log-level=warning", *args]
    print("$ meltano", " ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def sync(env: dict[str, str]) -> Counter[str]:
    """Run the pipeline; give the records the tap sent per stream (its metrics)."""
    command = [
        str(BIN / "meltano"),
        "--environment=demo",
        "--log-level=info",
        "--log-format=json",
        "run",
        "tap-oktopost",
        "target-duckdb",
    ]
    print("$ meltano", " ".join(command[1:]), flush=True)
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-6000:])
        raise SystemExit(done.returncode)
    sent: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("name") != "tap-oktopost":
            continue
        metric = event.get("metric_info")
        if isinstance(metric, dict) and metric.get("metric") == "record_count":
            sent[metric["tags"]["stream"]] += int(metric["value"])
    return sent


def start_stand_in(port_file: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start the local Oktopost stand-in and wait until it listens."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.stand_ins.oktopost_stand_in",
            "--port-file",
            str(port_file),
        ],
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if server.poll() is not None or time.monotonic() > deadline:
            message = "the Oktopost stand-in did not start"
            raise SystemExit(message)
        time.sleep(0.1)
    return server, json.loads(port_file.read_text())


def main() -> None:
    """Serve the demo exports, sync them twice, and show what DuckDB holds."""
    DATABASE.unlink(missing_ok=True)
    DATABASE.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        server, stand_in = start_stand_in(Path(folder) / "stand-in.json")
        try:
            env = {
                **os.environ,
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "TAP_OKTOPOST_BASE_URL": stand_in["base_url"],
                "TAP_OKTOPOST_ACCOUNT_ID": stand_in["account_id"],
                "TAP_OKTOPOST_API_KEY": stand_in["api_key"],
                "TARGET_DUCKDB_FILEPATH": str(DATABASE),
            }
            meltano("install", "tap-oktopost", "target-duckdb", env=env)
            meltano(
                "state",
                "clear",
                "--force",
                "demo:tap-oktopost-to-target-duckdb",
                env=env,
            )
            streams: list[str] = []
            for label in ("First sync", "Second sync (nothing new to load)"):
                sent = sync(env)
                streams = streams or sorted(sent)
                print(f"\n{label}: records the tap sent", flush=True)
                for stream in streams:
                    print(f"  {stream:<28} {sent[stream]:>6} records")
                print(f"and rows in {DATABASE.relative_to(ROOT)}", flush=True)
                subprocess.run(
                    [str(DUCKDB_PYTHON), "-c", COUNT_ROWS, str(DATABASE)], check=True
                )
                print(flush=True)
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()

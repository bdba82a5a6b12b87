"""Demonstration sync: the local Oktopost stand-in, through Meltano, into DuckDB.

Runs `meltano run tap-oktopost target-duckdb` twice against demo exports served on
127.0.0.1 and prints each table's row count read back from the database: the second
run has no new export run to load, so it adds nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
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


def start_stand_in(port_file: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start the local Oktopost stand-in and wait until it listens."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.oktopost_stand_in",
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
            for label in ("First sync", "Second sync (nothing new to load)"):
                meltano("run", "tap-oktopost", "target-duckdb", env=env)
                print(f"\n{label}: rows in {DATABASE.relative_to(ROOT)}", flush=True)
                subprocess.run(
                    [str(DUCKDB_PYTHON), "-c", COUNT_ROWS, str(DATABASE)], check=True
                )
                print(flush=True)
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()

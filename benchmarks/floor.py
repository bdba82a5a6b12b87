"""The floor: the simplest program that turns an export's archive into Singer records.

Usage: ``python benchmarks/floor.py CONFIG_JSON EXPORT_ID [STREAM]``

It does what any CSV-export tap must do and nothing more: fetch the export's detail
with Basic auth, download its signed link (no auth) to a temporary file, read each CSV
member with ``csv.DictReader`` and write one RECORD line per row to stdout. No types,
no schema, no state: the time a tap can hope to approach.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import requests


def main(argv: list[str]) -> int:
    """Download the export's last run and print its rows as RECORD messages."""
    config = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    export_id, stream = argv[1], argv[2] if len(argv) > 2 else "posts"
    api = requests.Session()
    api.auth = (config["account_id"], config["api_key"])
    detail = api.get(f"{config['base_url']}/bi-export/{export_id}", timeout=300)
    detail.raise_for_status()
    link = detail.json()["Export"]["LastRunFile"]
    storage = requests.Session()
    storage.trust_env = False
    count = 0
    with tempfile.TemporaryFile() as archive_file:
        with storage.get(link, stream=True, timeout=300) as got:
            got.raise_for_status()
            for chunk in got.iter_content(1024 * 1024):
                archive_file.write(chunk)
        archive_file.seek(0)
        with zipfile.ZipFile(archive_file) as archive:
            for member in archive.namelist():
                if not member.lower().endswith(".csv"):
                    continue
                with archive.open(member) as binary:
                    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
                    for row in csv.DictReader(text):
                        message = {"type": "RECORD", "stream": stream, "record": row}
                        sys.stdout.write(json.dumps(message) + "\n")
                        count += 1
    sys.stdout.flush()
    sys.stderr.write(f"floor: {count} records\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

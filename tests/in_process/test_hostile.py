"""Hostile and broken servers: bounded disk, memory and time; no secret in any output.

Each test plays one trick a server or proxy could play (issue 11) and checks what a
user would: the tap ends with a clear error, within seconds, under 100 MB of memory,
with no more than the configured bound on disk, and with no credential in its output.
Runs in a child process are measured with `os.wait4` (peak RSS) and a poller of the
tap's temporary folder (peak disk); `FIGURES` lines print them (pytest -s).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
import random
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_oktopost.api.client import OktopostClient
from tap_oktopost.api.errors import OktopostError, RetriableOktopostError
from tap_oktopost.api.exports import ExportRun
from tap_oktopost.api.transport import MAX_API_ANSWER_BYTES, storage_session
from tap_oktopost.archives.archive import (
    DEFAULT_MAX_UNCOMPRESSED_BYTES,
    DamagedMemberError,
    ExportArchive,
    InflationLimitError,
)
from tap_oktopost.archives.download import ArchiveStore
from tap_oktopost.sync.ledger import read_bookmarks
from tap_oktopost.tables.names import EXPORT_ID
from tests.conftest import TAP, csv_text, meltano, sync_in_process
from tests.stand_ins.hostile_server import (
    SIGNATURE,
    Hostile,
    HostileHandler,
    Responder,
    endless,
    file_answer,
    hostile_pair,
    json_answer,
    redirect,
    trickle,
    trickle_head,
)
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, StandInExport, make_zip

EXPORT = "032000000000777"
MiB = 1024 * 1024
RSS_LIMIT_MB = 100
DESTINATION_SECRETS = {
    "Passwd": "dest-passwd-1",
    "Pwd": "dest-pwd-2",
    "ConnectionString": "AccountKey=dest-conn-3",
    "SasUrl": "https://x.blob/?sig=dest-sas-4",
    "Auth": "dest-auth-5",
    "Credentials": {"User": "u", "Secret": "dest-nested-6"},
}
POSTS_ZIP = make_zip({"Posts.csv": csv_text([["Post ID", "Clicks"], ["1", "2"]])})


def secrets_of(hostile: Hostile) -> list[str]:
    basic = base64.b64encode(f"{hostile.account_id}:{hostile.api_key}".encode())
    return [
        hostile.api_key,
        basic.decode(),
        "X-Amz-Signature",
        SIGNATURE.partition("=")[2],
        "netrc-secret",
        *(value for value in DESTINATION_SECRETS.values() if isinstance(value, str)),
        "dest-nested-6",
    ]


def config_of(hostile: Hostile, **settings: Any) -> dict[str, Any]:
    return {
        "account_id": hostile.account_id,
        "api_key": hostile.api_key,
        "base_url": hostile.base_url,
        "export_ids": [EXPORT],
        "max_retries": 0,
        **settings,
    }


MEASURING = [
    sys.executable,
    "-c",
    """
import resource, signal, subprocess, sys
tap = subprocess.Popen(sys.argv[2:])
for signum in (signal.SIGTERM, signal.SIGINT):
    signal.signal(signum, lambda number, frame: tap.send_signal(number))
code = tap.wait()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(code if code >= 0 else 128 - code)
""",
]
"""Runs the tap as its only child, to give the tap's own peak RSS (kB): a child
forked from pytest would count pytest's memory as its own."""


@dataclass
class Measured:
    """A tap process's outcome and what it cost."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    peak_disk_bytes: int
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def figures(self, name: str) -> None:
        print(
            f"FIGURES {name}: peak RSS {self.peak_rss_mb:.1f} MB, peak disk "
            f"{self.peak_disk_bytes} bytes, {self.seconds:.2f} s, "
            f"exit {self.returncode}"
        )


def folder_bytes(folder: Path) -> int:
    """Bytes the tap left in a folder, but for its throttle's call log.

    That one stays on purpose: the account's next process reads it.
    """
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            if name.startswith("tap-oktopost-calls-"):
                continue
            try:
                total += (Path(root) / name).stat().st_size
            except FileNotFoundError:
                continue
    return total


def measured_run(
    config: dict[str, Any],
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    interrupt: tuple[Callable[[], bool], int] | None = None,
) -> Measured:
    """Sync in a child process, as Meltano would, measuring memory, disk and time.

    `interrupt` is (when, signal): the signal is sent once `when()` says so.
    """
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAP_OKTOPOST_")},
        "TMPDIR": str(temp),
        **(env or {}),
    }
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    rss = tmp_path / "rss"
    started = time.monotonic()
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [*MEASURING, str(rss), *TAP, "--config", str(config_file)],
            stdout=stdout,
            stderr=stderr,
            env=environment,
        )
    peak_disk = 0
    while process.poll() is None:
        peak_disk = max(peak_disk, folder_bytes(temp))
        if interrupt is not None and interrupt[0]():
            process.send_signal(interrupt[1])
            interrupt = None
        if time.monotonic() - started > timeout:
            process.kill()
            process.wait()
            pytest.fail(f"the tap still ran after {timeout} s: {err.read_text()}")
        time.sleep(0.005)
    return Measured(
        returncode=process.returncode,
        stdout=out.read_text(),
        stderr=err.read_text(),
        peak_rss_mb=int(rss.read_text()) / 1024,
        peak_disk_bytes=max(peak_disk, folder_bytes(temp)),
        seconds=time.monotonic() - started,
    )


def assert_no_secret(hostile: Hostile, text: str) -> None:
    for secret in secrets_of(hostile):
        assert secret not in text


class Clock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def client_of(hostile: Hostile, *, timeout: float = 10.0) -> OktopostClient:
    clock = Clock()
    return OktopostClient(
        hostile.base_url,
        requests.auth.HTTPBasicAuth(hostile.account_id, hostile.api_key),
        timeout=timeout,
        max_retries=0,
        rate_limit_wait=0,
        logger=logging.getLogger("tap-oktopost-hostile"),
        sleep=clock.sleep,
        clock=clock if timeout >= 10 else time.monotonic,
    )


# -- 1. temporary file names: test_archives.py covers `../../x` and absolute.


# -- 2. every stream of bytes bounded while it is read ---------------------------


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["plain", "gzip"])
def test_a_huge_api_answer_is_refused_in_bounded_memory(
    hostile: Hostile, tmp_path: Path, encoding: str
) -> None:
    # 300 MB of JSON, or 100 MB of it as a 100 KB gzip body.
    item = json.dumps({"Id": "x" * 1000, "Status": "active"}).encode() + b","
    if encoding == "plain":
        listing = endless(item, 300_000, first=b'{"Result": true, "Exports": [')
    else:
        body = b'{"Result": true, "Exports": [' + b" " * (100 * MiB)
        packed = gzip.compress(body, 9)
        listing = endless(
            packed, 1, headers={"Content-Encoding": "gzip"}, declared=len(packed)
        )
    hostile.route("/v2/bi-export", listing)

    run = measured_run({**config_of(hostile), "export_ids": []}, tmp_path)
    run.figures(f"api answer ({encoding})")

    assert run.returncode == 1
    assert f"Listing exports (page 0): the answer passed {MAX_API_ANSWER_BYTES}" in (
        run.stderr
    )
    assert run.peak_rss_mb < RSS_LIMIT_MB
    assert_no_secret(hostile, run.output)


@pytest.mark.slow
@pytest.mark.parametrize("declared", [True, False])
def test_a_download_stops_at_max_archive_bytes_and_is_not_retried(
    hostile: Hostile, tmp_path: Path, declared: bool
) -> None:
    limit = 4 * MiB
    # 2 GiB of "archive", with or without a Content-Length saying so.
    size = 2048 * MiB
    hostile.serve_export(
        EXPORT,
        endless(b"PK" + bytes(MiB - 2), 2048, declared=size if declared else None),
    )

    run = measured_run(
        config_of(hostile, max_archive_bytes=limit, max_retries=2), tmp_path
    )
    run.figures(f"2 GiB download, Content-Length {declared}")

    # Discovery reads the archive first (this storage ignores Range): a warning,
    # then the sync fails the export (its run would be lost) without downloading
    # it again; the others would load.
    assert run.returncode == 1
    assert (
        f"Export {EXPORT}: its last run's file is over the max_archive_bytes setting"
    ) in run.stderr.split("Discovery leaves", 1)[1].split("\n", 1)[1]
    assert (
        f"Discovery leaves export {EXPORT} out of the catalog: Export {EXPORT}: its "
        f"last run's file is over the max_archive_bytes setting ({limit} bytes); "
        "the download stopped there"
    ) in run.stderr
    assert len(hostile.hits(f"/files/{EXPORT}.zip")) == 1
    assert run.peak_disk_bytes <= limit
    assert folder_bytes(tmp_path / "tmp") == 0
    assert run.peak_rss_mb < RSS_LIMIT_MB
    assert_no_secret(hostile, run.output)


def incompressible_posts(seed: int, size: int) -> bytes:
    """An archive of about `size` bytes: a Posts file of random text."""
    rng = random.Random(seed)  # noqa: S311
    rows = [["Post ID", "Text"]]
    rows += [[str(n), rng.randbytes(600).hex()] for n in range(size // 600)]
    return make_zip({"Posts.csv": csv_text(rows)})


@pytest.mark.slow
def test_the_archives_held_at_once_stay_under_max_disk_bytes(tmp_path: Path) -> None:
    """Three exports due, room for two: the third fails, naming itself and the
    setting; the two others load and move their bookmarks; the disk never holds
    more than the bound."""
    exports = [f"0320000000001{n:02}" for n in range(3)]
    archives = [incompressible_posts(n, 1 * MiB) for n in range(3)]
    bound = len(archives[0]) + len(archives[1]) + MiB // 2
    assert bound < sum(len(archive) for archive in archives)
    with OktopostStandIn() as stand_in:
        for export_id, archive in zip(exports, archives, strict=True):
            stand_in.add_export(posts_export(export_id, archive))
        config = {
            "account_id": stand_in.account_id,
            "api_key": stand_in.api_key,
            "base_url": stand_in.base_url,
            "export_ids": exports,
            "max_retries": 0,
            "max_disk_bytes": bound,
        }
        run = measured_run(config, tmp_path, timeout=60)
    run.figures("three exports due, max_disk_bytes for two")

    messages = [json.loads(line) for line in run.stdout.splitlines()]
    loaded = {
        m["record"][EXPORT_ID]
        for m in messages
        if m["type"] == "RECORD" and m["stream"] == "posts"
    }
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    assert run.returncode == 1
    assert (
        f"Export {exports[2]}: its last run's file would take the archives held for "
        f"this sync past the max_disk_bytes setting ({bound} bytes; "
    ) in run.stderr
    assert loaded == set(exports[:2])
    assert set(read_bookmarks(states[-1])) == set(exports[:2])
    assert run.peak_disk_bytes <= bound
    assert folder_bytes(tmp_path / "tmp") == 0


def posts_export(export_id: str, archive: bytes) -> StandInExport:
    return StandInExport(
        id=export_id, last_run_date="2026-11-27 10:00:00", archive=archive
    )


def lying_zip(name: str, data: bytes) -> bytes:
    """A ZIP whose central directory claims its member is barely compressed.

    A member after it gives zipfile the bytes the claim makes it read ahead.
    """
    padding = random.Random(11).randbytes(2 * MiB)  # noqa: S311
    packed = bytearray(make_zip({name: data, "padding.bin": padding}))
    claim = struct.pack("<I", len(data))
    local = packed.find(b"PK\x03\x04")
    central = packed.find(b"PK\x01\x02")
    packed[local + 18 : local + 22] = claim
    packed[central + 20 : central + 24] = claim
    return bytes(packed)


def archive_of(
    tmp_path: Path,
    data: bytes,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
) -> ExportArchive:
    path = tmp_path / "run.zip"
    path.write_bytes(data)
    run = ExportRun.from_detail(
        EXPORT,
        {
            "Id": EXPORT,
            "Type": "Posts",
            "LastRunDate": "2026-11-27 10:00:00",
            "LastRunFile": "http://127.0.0.1/run.zip",
        },
    )
    return ExportArchive(run, path, max_uncompressed_bytes)


def read_all(archive: ExportArchive, member: str) -> int:
    with archive.open_member(member) as stream:
        return sum(len(piece) for piece in iter(lambda: stream.read(MiB), b""))


def test_a_member_lying_about_its_compression_is_refused_as_it_inflates(
    tmp_path: Path,
) -> None:
    data = b"Post ID,Clicks\n" + b"0,0\n" * 5_000_000  # 20 MB, deflated 1000:1
    archive = archive_of(tmp_path, lying_zip("Posts.csv", data))
    assert archive.zip_file is not None
    info = archive.zip_file.getinfo("Posts.csv")
    assert info.compress_type == zipfile.ZIP_DEFLATED  # what the member is
    assert info.compress_size == info.file_size  # the claim: no compression at all
    archive.check_limits(20 * 1024**3)  # which the claimed sizes pass

    # Python 3.13's zipfile refuses this member itself (its claimed size overlaps
    # the central directory); earlier ones leave it to the tap's own count.
    with pytest.raises((InflationLimitError, DamagedMemberError)) as raised:
        read_all(archive, "Posts.csv")

    message = str(raised.value)
    assert message.startswith(f"Export {EXPORT} (Posts), file Posts.csv: ")
    assert "zip bomb" in message
    if sys.version_info < (3, 13):
        assert "past 1000 times: refusing a likely zip bomb" in message


def test_inflation_is_counted_per_archive_on_the_bytes_inflated(
    tmp_path: Path,
) -> None:
    rows = csv_text([["Post ID", "Clicks"], *([str(n), "1"] for n in range(200_000))])
    archive = archive_of(
        tmp_path,
        make_zip({"a/Posts.csv": rows, "b/Posts.csv": rows}),
        max_uncompressed_bytes=len(rows) + MiB,
    )

    assert read_all(archive, "a/Posts.csv") == len(rows)
    assert read_all(archive, "a/Posts.csv") == len(rows)  # read again: counted once
    with pytest.raises(InflationLimitError, match=r"file b/Posts\.csv: the archive's"):
        read_all(archive, "b/Posts.csv")


# -- 3. every wait bounded ------------------------------------------------------


def finishes_within(seconds: float, call: Callable[[], Any]) -> BaseException:
    """Run `call` in a thread; the exception it raised, failing if it hangs."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    assert raised, "no error raised"
    return raised[0]


TRICKLES = pytest.mark.parametrize(
    "trickling", [trickle, trickle_head], ids=["body", "status line and headers"]
)


@pytest.mark.slow
@TRICKLES
def test_an_api_answer_trickling_a_byte_at_a_time_ends_at_the_deadline(
    hostile: Hostile, trickling: Callable[..., Responder]
) -> None:
    # Each byte comes well within the socket timeout; the whole would take minutes.
    body = json.dumps({"Result": True, "User": {"Name": "x" * 3000}}).encode()
    hostile.route("/v2/me", trickling(body, every=0.2))
    client = client_of(hostile, timeout=1)

    started = time.monotonic()
    error = finishes_within(10, client.check_credentials)

    assert isinstance(error, RetriableOktopostError)
    assert str(error) == (
        "Checking credentials (GET /me): the answer did not come whole within the "
        "request_timeout setting; the server sends too slowly"
    )
    assert time.monotonic() - started < 3


@pytest.mark.slow
@TRICKLES
def test_a_download_trickling_a_byte_at_a_time_is_cut_off_as_stalled(
    hostile: Hostile, tmp_path: Path, trickling: Callable[..., Responder]
) -> None:
    hostile.serve_export(EXPORT, trickling(POSTS_ZIP, every=0.2))

    run = measured_run(config_of(hostile, request_timeout=1), tmp_path, timeout=20)
    run.figures(f"trickled download ({trickling.__name__})")

    # Discovery leaves the export out, with a warning; the sync stalls again on
    # it and fails it.
    assert run.returncode == 1
    assert (
        f"Discovery leaves export {EXPORT} out of the catalog: Export {EXPORT}: "
        f"downloading {hostile.origin}/files/{EXPORT}.zip: stalled, under 1048576 "
        "bytes in 1 s (request_timeout)"
    ) in run.stderr
    assert run.seconds < 10
    assert_no_secret(hostile, run.output)


def test_a_range_read_trickling_its_headers_is_cut_off_at_the_deadline(
    hostile: Hostile,
) -> None:
    """The head comes at once (so the archive is read remotely); the next Range
    request's headers trickle. The read fails within the timeout, naming the
    export and the bytes, never the signed link."""
    archive = incompressible_posts(1, 256 * 1024)
    answers = 0

    def ranged(handler: HostileHandler) -> None:
        nonlocal answers
        answers += 1
        first, last = map(int, handler.headers["Range"][6:].split("-"))
        if answers > 1:
            trickle_head(archive[first : last + 1], every=0.2)(handler)
            return
        piece = archive[first : last + 1]
        headers = {"Content-Range": f"bytes {first}-{last}/{len(archive)}"}
        handler.send_body(piece, 206, headers)

    hostile.serve_export(EXPORT, ranged)
    run = ExportRun.from_detail(EXPORT, client_of(hostile).get_export(EXPORT))
    store = ArchiveStore(
        lambda export_id: run,
        timeout=1,
        max_retries=0,
        rate_limit_wait=0,
        max_uncompressed_bytes=10 * MiB,
        logger=logging.getLogger("tap-oktopost-hostile"),
    )

    started = time.monotonic()
    error = finishes_within(10, lambda: store.archive(run, headers_only=True))

    assert isinstance(error, OktopostError)
    assert f"Export {EXPORT}: reading {hostile.origin}/files/{EXPORT}.zip, bytes " in (
        str(error)
    )
    assert "the answer did not come whole within the request_timeout setting" in (
        str(error)
    )
    assert time.monotonic() - started < 4
    assert "X-Amz" not in str(error)


# -- 4. no secret in any output ---------------------------------------------------


@pytest.mark.slow
def test_a_numeric_api_key_is_refused_without_echoing_it(
    hostile: Hostile, tmp_path: Path
) -> None:
    key = 98765432123456789
    run = measured_run({**config_of(hostile), "api_key": key}, tmp_path)

    assert run.returncode == 1
    assert "Setting api_key fails the rule type" in run.stderr
    assert str(key) not in run.output


@pytest.mark.slow
def test_a_base_url_holding_a_password_is_refused_without_echoing_it(
    hostile: Hostile, tmp_path: Path
) -> None:
    base_url = hostile.base_url.replace("://", "://someone:url-password-7@")
    run = measured_run({**config_of(hostile), "base_url": base_url}, tmp_path)

    assert run.returncode == 1
    assert "The base_url setting holds a user name or password" in run.stderr
    assert "url-password-7" not in run.output
    assert hostile.seen == []


def test_destinations_keep_only_fields_known_to_be_safe() -> None:
    destination = {
        "Host": "sftp.acme.com",
        "Port": 22,
        "Username": "bi",
        "Path": "/exports",
        **DESTINATION_SECRETS,
    }
    with OktopostStandIn() as stand_in:
        stand_in.add_export(
            StandInExport(
                id=EXPORT,
                destination=destination,
                last_run_date="2026-11-27 10:00:00",
                archive=POSTS_ZIP,
            )
        )
        run = sync_in_process(
            {
                "account_id": stand_in.account_id,
                "api_key": stand_in.api_key,
                "base_url": stand_in.base_url,
            }
        )

    safe = {"Host": "sftp.acme.com", "Port": 22, "Username": "bi", "Path": "/exports"}
    for stream in ("export_list_metadata", "active_export_metadata"):
        assert [record["Destination"] for record in run.records(stream)] == [safe]
    for secret in ("dest-", "Passwd", "SasUrl", '"Credentials"', "ConnectionString"):
        assert secret not in run.stdout


STRUCTURED_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "singer_sdk.logging.StructuredFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "structured",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "DEBUG", "handlers": ["console"]},
}


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: a connection to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class ChainedFaults:
    """An export whose archive reads well by Range for discovery (its first
    detail); then (the sync's detail) its link points at storage refusing the
    connection, an error whose text in requests and urllib3 quotes the whole
    signed link; asked for a fresh link after that, its detail fails (HTTP 500)."""

    hostile: Hostile
    export_id: str
    details: int = 0

    def __post_init__(self) -> None:
        self.archive = incompressible_posts(7, 200 * 1024)  # past the first Range
        self.hostile.route(f"/v2/bi-export/{self.export_id}", self.detail)
        self.hostile.route(f"/files/{self.export_id}.zip", self.file)

    def detail(self, handler: HostileHandler) -> None:
        self.details += 1
        if self.details > 2:
            handler.send_body(b"", 500)
            return
        link = self.hostile.link(f"/files/{self.export_id}.zip")
        if self.details == 2:
            link = link.replace(
                self.hostile.origin, f"http://127.0.0.1:{closed_port()}"
            )
        detail = {
            "Id": self.export_id,
            "Type": "Posts",
            "LastRunDate": "2026-11-27 10:00:00",
            "LastRunFile": link,
        }
        json_answer(detail, key="Export")(handler)

    def file(self, handler: HostileHandler) -> None:
        first, last = map(
            int,
            handler.headers.get("Range", "bytes=0-").removeprefix("bytes=").split("-"),
        )
        last = min(last, len(self.archive) - 1)
        span = f"bytes {first}-{last}/{len(self.archive)}"
        handler.send_body(self.archive[first : last + 1], 206, {"Content-Range": span})


@pytest.mark.slow
def test_chained_faults_leave_no_secret_in_structured_debug_logs(
    hostile: Hostile, tmp_path: Path
) -> None:
    """Discovery reads the archive; the sync finds storage refusing the connection,
    then the link refresh fails: as Meltano runs the tap, with the SDK's structured
    formatter, which prints every exception's chain (`from None` notwithstanding).
    Then a refused listing whose message would forge log lines."""
    faults = ChainedFaults(hostile, EXPORT)
    listed = [{"Id": EXPORT, "Status": "active", "Destination": DESTINATION_SECRETS}]
    hostile.route("/v2/bi-export", json_answer(listed, key="Exports", Total=1))
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    netrc.chmod(0o600)
    log_config = tmp_path / "logging.yml"
    log_config.write_text(json.dumps(STRUCTURED_LOGGING))
    env = {
        "SINGER_SDK_LOG_CONFIG": str(log_config),
        "LOGLEVEL": "DEBUG",
        "NETRC": str(netrc),
    }

    run = measured_run(config_of(hostile, max_retries=1), tmp_path, env=env)
    forged = {"API": "forged\nERROR | tap-oktopost | all is well\x1b[2J"}
    hostile.route("/v2/bi-export", json_answer(forged, key="Errors", status=400))
    plain = tmp_path / "plain"  # the console format, where a newline forges a line
    plain.mkdir()
    listing = measured_run(
        {**config_of(hostile), "export_ids": []}, plain, env={"NETRC": str(netrc)}
    )

    assert_no_secret(hostile, run.output)
    assert run.returncode == 1
    assert faults.details >= 3  # discovery's, the sync's, the failed refresh
    assert f"Export {EXPORT}: HTTP 500 from Oktopost" in run.stderr
    assert_no_secret(hostile, listing.output)
    assert listing.returncode == 1
    assert "forged\\nERROR | tap-oktopost | all is well\\x1b[2J" in listing.stderr
    assert "forged\nERROR" not in listing.stderr
    assert "\x1b" not in listing.stderr
    for seen in hostile.seen:
        if seen.path.startswith("/files/"):
            assert "Authorization" not in seen.headers


@pytest.mark.slow
def test_meltano_run_with_json_logs_at_debug_prints_no_secret_after_chained_faults(
    meltano_base_env: dict[str, str], hostile: Hostile, tmp_path: Path
) -> None:
    """`meltano run` as a user runs it, Meltano's JSON log format at DEBUG, the tap
    logging through the SDK's structured formatter (Meltano's logging config for a
    plugin declaring structured-logging). Discovery reads the archives; then the
    sync meets storage refusing the connection, then a failed link refresh (A), an
    API error envelope (B) and a 401 (C). Nothing the run leaves holds a secret."""
    first, second, third = (f"0320000000009{n:02}" for n in range(3))
    faults = ChainedFaults(hostile, first)
    listed = [
        {"Id": export_id, "Status": "active", "Destination": DESTINATION_SECRETS}
        for export_id in (first, second, third)
    ]
    hostile.route("/v2/bi-export", json_answer(listed, key="Exports", Total=3))
    envelope = {"Id": f"forged for {hostile.api_key[:4]}", "Auth": "refused"}
    hostile.route(
        f"/v2/bi-export/{second}", json_answer(envelope, key="Errors", status=400)
    )
    refused = {"Auth": "Invalid credentials"}
    hostile.route(
        f"/v2/bi-export/{third}", json_answer(refused, key="Errors", status=401)
    )
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    netrc.chmod(0o600)
    suffix = f"hostile-{tmp_path.name}"
    env = {
        **meltano_base_env,
        "TAP_OKTOPOST_BASE_URL": hostile.base_url,
        "TAP_OKTOPOST_ACCOUNT_ID": hostile.account_id,
        "TAP_OKTOPOST_API_KEY": hostile.api_key,
        "TAP_OKTOPOST_EXPORT_IDS": json.dumps([first, second, third]),
        "TAP_OKTOPOST_MAX_RETRIES": "0",  # the refresh follows the fault at once
        "TAP_OKTOPOST_WHOLE_FILE_DISCOVERY_BYTES": "0",  # discovery reads by Range
        "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "jsonl"),
        "NETRC": str(netrc),
    }

    done = meltano(
        env,
        "--log-level=debug",
        "--log-format=json",
        "run",
        f"--state-id-suffix={suffix}",
        "tap-oktopost",
        "target-jsonl",
        check=False,
    )
    state = meltano(
        env, "state", "get", f"test:tap-oktopost-to-target-jsonl:{suffix}", check=False
    )
    written = "".join(path.read_text() for path in (tmp_path / "jsonl").glob("*"))

    for text in (done.stdout, done.stderr, state.stdout, state.stderr, written):
        assert_no_secret(hostile, text)
    assert done.returncode != 0
    tap_lines = [
        json.loads(line)
        for line in done.stderr.splitlines()
        if line.startswith("{") and '"tap-oktopost"' in line
    ]
    said = "\n".join(str(line.get("event", "")) for line in tap_lines)
    # urllib3's DEBUG lines name each signed link, without its query string.
    assert f'"GET /files/{first}.zip?<redacted> HTTP/1.1" 206' in said
    assert f"Export {first}: HTTP 500 from Oktopost" in said
    assert f"Export {second}: HTTP 400" in said
    assert f"Export {third}: HTTP 401" in said
    assert any(line.get("level") == "debug" for line in tap_lines)
    assert faults.details >= 3  # discovery's, the sync's, the failed refresh


# -- 5. network hygiene -------------------------------------------------------------


def test_no_netrc_password_follows_a_redirect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with hostile_pair() as (api, elsewhere):
        api.route("/v2/me", redirect(f"{elsewhere.origin}/v2/me"))
        elsewhere.route("/v2/me", json_answer({"Name": "x"}, key="User"))
        api.route("/files/run.zip", redirect(f"{elsewhere.origin}/files/run.zip"))
        elsewhere.route("/files/run.zip", file_answer(POSTS_ZIP))

        client_of(api).check_credentials()
        with storage_session() as session:
            got = session.get(api.link("/files/run.zip"), timeout=10)

    assert got.content == POSTS_ZIP
    assert "Authorization" in api.hits("/v2/me")[0].headers  # the API's own key
    for seen in elsewhere.seen:
        assert "Authorization" not in seen.headers, seen.path


@pytest.mark.slow
def test_an_http_proxy_from_the_environment_carries_api_calls_and_downloads(
    hostile: Hostile, tmp_path: Path
) -> None:
    # The tap can reach these made-up hosts through the proxy alone.
    hostile.serve_export(
        EXPORT, file_answer(POSTS_ZIP), link_origin="http://storage.invalid"
    )
    config = config_of(hostile, base_url="http://oktopost.invalid/v2")
    env = {"HTTP_PROXY": hostile.origin, "NO_PROXY": "", "no_proxy": ""}

    run = measured_run(config, tmp_path, env=env)

    assert run.returncode == 0, run.stderr[-2000:]
    records = [json.loads(line) for line in run.stdout.splitlines()]
    posts = [m for m in records if m["type"] == "RECORD" and m["stream"] == "posts"]
    assert [record["record"]["clicks"] for record in posts] == [2]
    paths = [seen.path for seen in hostile.seen]
    assert f"http://oktopost.invalid/v2/bi-export/{EXPORT}" in paths
    assert any(p.startswith(f"http://storage.invalid/files/{EXPORT}") for p in paths)
    assert "the API key travels unencrypted; use https://" in run.stderr


@pytest.mark.slow
def test_a_ca_bundle_from_the_environment_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with Hostile(tls) as hostile:
        hostile.route("/v2/me", json_answer({"Name": "x"}, key="User"))
        hostile.route("/files/run.zip", file_answer(POSTS_ZIP))

        user = client_of(hostile).check_credentials()
        with storage_session() as session:
            got = session.get(hostile.link("/files/run.zip"), timeout=10)

    assert user == {"Name": "x"}
    assert got.content == POSTS_ZIP


def test_an_http_base_url_is_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        OktopostClient(
            "http://api.oktopost.com/v2",
            requests.auth.HTTPBasicAuth("a", "b"),
            timeout=1,
            max_retries=0,
            rate_limit_wait=0,
            logger=logging.getLogger("tap-oktopost-hostile"),
        )

    assert "the API key travels unencrypted; use https://" in caplog.text


# -- 6. interrupted syncs exit non-zero -------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_sync_exits_non_zero(
    hostile: Hostile, tmp_path: Path, signum: int
) -> None:
    hostile.serve_export(EXPORT, trickle(POSTS_ZIP, every=0.5))

    run = measured_run(
        config_of(hostile),
        tmp_path,
        interrupt=(lambda: bool(hostile.hits(f"/files/{EXPORT}.zip")), signum),
    )

    assert run.returncode == 128 + signum
    assert f"Stopped by {signal.Signals(signum).name} before the sync finished" in (
        run.stderr
    )
    assert '"type":"STATE"' in run.stdout.replace(" ", "")
    assert folder_bytes(tmp_path / "tmp") == 0


def test_requests_is_at_least_the_release_without_the_netrc_leak() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"requests>=2.32.4,<3"' in pyproject
    assert tuple(map(int, requests.__version__.split(".")[:3])) >= (2, 32, 4)

"""Fast checks of the download rules: what reaches storage (Range reads of the
right bytes and version, no credential, also across redirects), the size and disk
bounds at their exact edge, and no signature, key or password in any log line.

The slow tests run the tap as a process against gigabytes or through Meltano; these
run each rule in this process on small files, so `make test-fast` catches a broken
rule in seconds. The module sorts first among the in-process tests on purpose: with
`-x`, a broken download rule stops the run within its first seconds.
"""

from __future__ import annotations

import io
import logging
import random
import socket
import struct
import time
import zipfile
from pathlib import Path

import pytest
import requests

from tap_oktopost.api.errors import OktopostError, redact
from tap_oktopost.api.exports import ExportRun
from tap_oktopost.api.transport import storage_session
from tap_oktopost.archives.archive import (
    ARCHIVE_RATIO_CHECK_BYTES,
    MAX_ARCHIVE_RATIO,
    MAX_COMPRESSION_RATIO,
    RATIO_CHECK_BYTES,
    ExportArchive,
    UnloadableExportError,
)
from tap_oktopost.archives.download import (
    ArchiveReadError,
    ArchiveStore,
    FileChangedError,
    RemoteFile,
)
from tap_oktopost.sync.ledger import read_bookmarks
from tap_oktopost.tables.names import EXPORT_ID
from tests.conftest import config_for, csv_text, sync_in_process
from tests.end_to_end.test_sync import secrets_of
from tests.in_process.test_archives import fetch_run, store_for
from tests.in_process.test_hostile import (
    ChainedFaults,
    assert_no_secret,
    client_of,
    config_of,
)
from tests.stand_ins.hostile_server import (
    SIGNATURE,
    Hostile,
    HostileHandler,
    endless,
    file_answer,
    hostile_pair,
    json_answer,
    redirect,
    trickle,
)
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, StandInExport, make_zip

KiB = 1024
REAL_SLEEP = time.sleep
HEAD, BLOCK = RemoteFile.HEAD_BYTES, RemoteFile.BLOCK_BYTES
EXPORTS = [f"0320000000004{n:02}" for n in range(6)]


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait no real time here."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


@pytest.fixture
def netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ~/.netrc with a password for 127.0.0.1, which requests would send."""
    path = tmp_path / "netrc"
    path.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    return "netrc-secret"


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - test data, not secrets


def posts_archive(rng: random.Random, size: int) -> bytes:
    """A ZIP of about `size` bytes that does not deflate: Posts of random text."""
    rows = [["Post ID", "Text"]]
    rows += [[str(n), rng.randbytes(50).hex()] for n in range(max(1, size // 100))]
    return make_zip({"Posts.csv": csv_text(rows)})


def add(stand_in: OktopostStandIn, export_id: str, archive: bytes) -> ExportRun:
    stand_in.add_export(
        StandInExport(
            id=export_id, last_run_date="2026-11-27 10:00:00", archive=archive
        )
    )
    return fetch_run(stand_in, export_id)


def disk_store(stand_in: OktopostStandIn, max_disk_bytes: int) -> ArchiveStore:
    return ArchiveStore(
        lambda export_id: fetch_run(stand_in, export_id),
        timeout=10,
        max_retries=1,
        rate_limit_wait=0,
        max_uncompressed_bytes=1 << 34,
        logger=logging.getLogger("tests.download_rules"),
        max_disk_bytes=max_disk_bytes,
    )


def folder_bytes(store: ArchiveStore) -> int:
    folder = store._folder  # the disk the store really uses
    if folder is None:
        return 0
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


# -- RemoteFile: block reads over Range ---------------------------------------------


def remote_file(stand_in: OktopostStandIn, data: bytes) -> RemoteFile:
    """A RemoteFile on a stand-in export's file, its head read as the store reads it."""
    run = add(stand_in, EXPORTS[0], data)
    link = str(run.link)
    head = requests.get(link, headers={"Range": f"bytes=0-{HEAD - 1}"}, timeout=10)
    assert head.status_code == 206
    return RemoteFile(
        storage_session(),
        link,
        len(data),
        head=head.content,
        etag=head.headers.get("ETag"),
        timeout=10,
        where=f"Export {EXPORTS[0]}: reading {link.split('?', maxsplit=1)[0]}",
        retry=lambda call: call(),
        relink=lambda: str(fetch_run(stand_in, EXPORTS[0]).link),
    )


def edge_reads(size: int, rng: random.Random) -> list[tuple[int, int]]:
    """(offset, length) pairs starting or ending at, or one byte off, every block
    edge and the head's end, and at the end of the file."""
    reads = []
    for edge in range(BLOCK, size, BLOCK):
        for start in (edge - 1, edge, edge + 1):
            for end in (edge - 1, edge, edge + 1, edge + 2):
                if start < end:
                    reads.append((start, end - start))
        reads.append((edge - rng.randint(1, BLOCK), rng.randint(1, 3 * BLOCK)))
    reads += [(size - 1, 1), (size - 5, 10), (size, 1), (0, size + 1)]
    return reads


@pytest.mark.parametrize("seed", range(5))
def test_remote_reads_give_the_files_bytes_at_any_offset(
    stand_in: OktopostStandIn, seed: int
) -> None:
    """Seek and read anywhere, across block edges, the head's end and the file's
    end: a RemoteFile gives exactly the bytes of the file, as a local file does."""
    rng = seeded(seed)
    data = rng.randbytes(rng.randint(HEAD + 3 * BLOCK, HEAD + 12 * BLOCK))
    remote = remote_file(stand_in, data)
    reads = edge_reads(len(data), rng)
    reads += [(rng.randrange(len(data)), rng.randint(1, 2 * BLOCK)) for _ in range(200)]
    rng.shuffle(reads)

    for offset, length in reads:
        assert remote.seek(offset) == offset
        got = remote.read(length)
        assert got == data[offset : offset + length], (offset, length)
        assert remote.tell() == min(offset + length, len(data)) or not got
    remote.seek(-7, 2)
    assert remote.read() == data[-7:]


def test_a_block_is_fetched_once_and_requests_never_overlap(
    stand_in: OktopostStandIn,
) -> None:
    """Reading a file twice over fetches each block once (the cache), in Range
    requests that never overlap and ask only past the head."""
    rng = seeded(7)
    data = rng.randbytes(HEAD + 9 * BLOCK + 123)
    remote = remote_file(stand_in, data)
    stand_in.reset_log()
    spots = [(rng.randrange(HEAD, len(data)), rng.randint(1, BLOCK)) for _ in range(60)]

    for offset, length in spots * 2:
        remote.seek(offset)
        assert remote.read(length) == data[offset : offset + length]

    asked = []
    for request in stand_in.downloads():
        first, last = map(int, request.headers["Range"].split("=")[1].split("-"))
        asked.append((first, last))
    covered = [byte for first, last in asked for byte in range(first, last + 1)]
    assert len(covered) == len(set(covered)), "a byte was fetched twice"
    assert min(first for first, _ in asked) >= HEAD


@pytest.mark.parametrize("etag", ["strong", "weak", "none"])
@pytest.mark.parametrize("same_size", [True, False])
def test_a_file_replaced_under_a_remote_read_is_noticed(
    stand_in: OktopostStandIn, etag: str, same_size: bool
) -> None:
    """Blocks ask for the head's version (If-Range with a strong ETag only); a
    new ETag or a new size raises FileChangedError naming the export, never
    bytes of two versions mixed."""
    stand_in.etag_style = etag
    rng = seeded(len(etag) + same_size)
    data = rng.randbytes(HEAD + 6 * BLOCK)
    remote = remote_file(stand_in, data)
    stand_in.reset_log()
    remote.seek(HEAD)
    assert remote.read(BLOCK) == data[HEAD : HEAD + BLOCK]
    new = rng.randbytes(len(data) if same_size else len(data) + BLOCK)
    stand_in.replace_after(EXPORTS[0], 0, new)

    remote.seek(HEAD + 3 * BLOCK)
    if etag == "none" and same_size:  # nothing tells the versions apart
        assert remote.read(BLOCK) == new[HEAD + 3 * BLOCK : HEAD + 4 * BLOCK]
    else:
        with pytest.raises(FileChangedError) as raised:
            remote.read(BLOCK)
        assert str(raised.value).startswith(f"Export {EXPORTS[0]}: reading ")
        assert "the file changed while being read" in str(raised.value)
        assert "X-Amz" not in str(raised.value)
    for request in stand_in.downloads():
        assert ("If-Range" in request.headers) == (etag == "strong")


# -- no Authorization to a signed link, also across redirects -----------------------


@pytest.mark.parametrize("hops", [0, 1, 3])
@pytest.mark.parametrize("ranged", [False, True])
def test_a_signed_link_gets_no_authorization_even_after_redirects(
    stand_in: OktopostStandIn, netrc: str, hops: int, ranged: bool
) -> None:
    """The store's requests for an archive, Range reads and redirects included,
    carry no Authorization: not the API key, not a ~/.netrc password."""
    data = posts_archive(seeded(hops), 200 * KiB)  # past the first Range
    run = add(stand_in, EXPORTS[0], data)
    if hops:
        stand_in.fail_next(
            "/storage/", 302, times=hops, headers={"Location": str(run.link)}
        )
    stand_in.reset_log()

    archive = store_for(stand_in).archive(run, headers_only=ranged)
    with archive.open_member("Posts.csv") as member:
        assert member.read() == make_zip_member(data)
    archive.delete()

    downloads = stand_in.downloads()
    assert len(downloads) > hops + (1 if ranged else 0)
    for request in downloads:
        assert "Authorization" not in request.headers, request.path


def make_zip_member(data: bytes) -> bytes:
    return zipfile.ZipFile(io.BytesIO(data)).read("Posts.csv")


@pytest.mark.parametrize("hops", [1, 2])
def test_a_redirect_to_another_host_takes_no_password_along(
    netrc: str, hops: int
) -> None:
    """Redirected from host to host (two ports of 127.0.0.1), the storage session
    adds no ~/.netrc password at any hop."""
    with hostile_pair() as (first, second):
        servers = [first, second]
        for hop in range(hops):
            target = servers[(hop + 1) % 2]
            servers[hop % 2].route(
                f"/files/{hop}.zip", redirect(target.link(f"/files/{hop + 1}.zip"))
            )
        archive = make_zip({"Posts.csv": "Post ID\n1\n"})
        servers[hops % 2].route(f"/files/{hops}.zip", file_answer(archive))
        with storage_session() as session:
            got = session.get(first.link("/files/0.zip"), timeout=10)

    assert got.content == archive
    seen = [*first.seen, *second.seen]
    assert len(seen) == hops + 1
    for request in seen:
        assert "Authorization" not in request.headers, request.path


def test_the_api_keeps_its_key_and_storage_gets_none_in_a_sync(
    stand_in: OktopostStandIn, netrc: str
) -> None:
    for number, export_id in enumerate(EXPORTS[:2]):
        add(stand_in, export_id, posts_archive(seeded(number), 30 * KiB))
    stand_in.reset_log()

    run = sync_in_process(config_for(stand_in, export_ids=EXPORTS[:2]))

    assert run.returncode == 0, run.stderr[-2000:]
    assert stand_in.downloads()
    assert all("Authorization" in call.headers for call in stand_in.api_calls())
    assert all("Authorization" not in got.headers for got in stand_in.downloads())
    assert netrc not in run.stderr


@pytest.mark.parametrize("path", ["/v2/me", "/v2/bi-export"])
def test_the_api_key_follows_a_redirect_on_its_host_only(netrc: str, path: str) -> None:
    """An API call redirected within its host keeps its key; redirected to another
    host (another port), it arrives with no Authorization at all."""
    answer = json_answer({"Name": "x"}, key="User")
    with hostile_pair() as (api, elsewhere):
        api.route("/v2/me", redirect(f"{api.origin}/v2/me-here"))
        api.route("/v2/me-here", redirect(f"{elsewhere.origin}/v2/me"))
        elsewhere.route("/v2/me", answer)
        listed = json_answer([], key="Exports", Total=0)
        api.route("/v2/bi-export", redirect(f"{elsewhere.origin}/v2/bi-export"))
        elsewhere.route("/v2/bi-export", listed)
        client = client_of(api)
        if path == "/v2/me":
            client.check_credentials()
        else:
            client.list_exports()

    assert all("Authorization" in seen.headers for seen in api.seen)
    assert elsewhere.seen
    for seen in elsewhere.seen:
        assert "Authorization" not in seen.headers, seen.path


# -- max_disk_bytes: the archives held at once ---------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_the_archives_held_never_pass_max_disk_bytes(
    stand_in: OktopostStandIn, seed: int
) -> None:
    """Archives of random sizes downloaded one after another and held: each is kept
    exactly when it fits beside those held, and a discard makes room again."""
    rng = seeded(seed)
    count = rng.randint(3, 5)
    archives = [posts_archive(rng, rng.randint(20, 120) * KiB) for _ in range(count)]
    bound = rng.randint(max(map(len, archives)), sum(map(len, archives)) - 1)
    if seed % 2:  # exactly the first archives' bytes: those fit, the next does not
        bound = sum(map(len, archives[: rng.randint(1, count - 1)]))
    runs = [add(stand_in, EXPORTS[n], data) for n, data in enumerate(archives)]
    store = disk_store(stand_in, bound)

    held = 0
    refused = []
    for run, data in zip(runs, archives, strict=True):
        if held + len(data) <= bound:
            store.archive(run)
            held += len(data)
        else:
            with pytest.raises(OktopostError) as raised:
                store.archive(run)
            message = str(raised.value)
            assert message.startswith(f"Export {run.export_id}: its last run's file")
            assert f"past the max_disk_bytes setting ({bound} bytes; {held} held" in (
                message
            )
            refused.append(run)
        assert store.held_bytes() == held <= bound
        assert folder_bytes(store) == held
    assert refused, "the bound leaves out at least one archive"

    for run in runs:
        if store.held(run.export_id) is not None:
            store.discard(run.export_id)
    assert store.held_bytes() == folder_bytes(store) == 0
    sizes = {run.export_id: len(data) for run, data in zip(runs, archives, strict=True)}
    for run in refused:  # alone, each loads if the bound holds it at all
        if sizes[run.export_id] <= bound:
            store.archive(run)
            store.discard(run.export_id)
        else:
            with pytest.raises(OktopostError, match="0 held for other exports"):
                store.archive(run)


def test_an_export_past_max_disk_bytes_fails_alone_in_a_sync(
    stand_in: OktopostStandIn,
) -> None:
    """Three exports due, room for two: the third fails naming itself and the
    setting; the two others load and move their bookmarks."""
    exports = EXPORTS[:3]
    archives = [posts_archive(seeded(n), 60 * KiB) for n in range(3)]
    for export_id, data in zip(exports, archives, strict=True):
        add(stand_in, export_id, data)
    bound = len(archives[0]) + len(archives[1]) + 10 * KiB

    run = sync_in_process(
        config_for(stand_in, export_ids=exports, max_retries=0, max_disk_bytes=bound)
    )

    loaded = {record[EXPORT_ID] for record in run.records("posts")}
    assert run.returncode == 1
    assert (
        f"Export {exports[2]}: its last run's file would take the archives held for "
        f"this sync past the max_disk_bytes setting ({bound} bytes; "
    ) in run.stderr
    assert loaded == set(exports[:2])
    assert set(read_bookmarks(run.final_state)) == set(exports[:2])


# -- max_archive_bytes: a download stops at the bound --------------------------------


def hostile_store(hostile: Hostile, max_archive_bytes: int) -> ArchiveStore:
    def refresh(wanted: str) -> ExportRun:
        return hostile_run(hostile, wanted)

    return ArchiveStore(
        refresh,
        timeout=10,
        max_retries=2,
        rate_limit_wait=0,
        max_uncompressed_bytes=1 << 34,
        logger=logging.getLogger("tests.download_rules"),
        max_archive_bytes=max_archive_bytes,
    )


def hostile_run(hostile: Hostile, export_id: str) -> ExportRun:
    detail = {
        "Id": export_id,
        "Type": "Posts",
        "LastRunDate": "2026-11-27 10:00:00",
        "LastRunFile": hostile.link(f"/files/{export_id}.zip"),
    }
    return ExportRun.from_detail(export_id, detail)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("declared", [True, False])
def test_a_download_stops_at_max_archive_bytes_whatever_its_headers_say(
    hostile: Hostile, seed: int, declared: bool
) -> None:
    """A file exactly max_archive_bytes long loads; one byte more is refused once,
    not retried, with nothing left on disk, whether or not Content-Length says so."""
    rng = seeded(seed)
    archive = posts_archive(rng, rng.randint(20, 150) * KiB)
    export_id = EXPORTS[seed]
    padding = rng.randint(1, 3 * KiB)

    def file(handler: HostileHandler) -> None:
        length = len(archive) + padding if declared else None
        endless(bytes(padding), 1, declared=length, first=archive)(handler)

    hostile.route(f"/files/{export_id}.zip", file)
    run = hostile_run(hostile, export_id)
    bound = len(archive) + padding

    store = hostile_store(hostile, max_archive_bytes=bound - 1)
    with pytest.raises(UnloadableExportError) as raised:
        store.archive(run)
    assert str(raised.value) == (
        f"Export {export_id}: its last run's file is over the max_archive_bytes "
        f"setting ({bound - 1} bytes); the download stopped there"
    )
    assert len(hostile.hits(f"/files/{export_id}.zip")) == 1
    assert folder_bytes(store) == 0

    fits = hostile_store(hostile, max_archive_bytes=bound)
    assert fits.archive(run).tables == {"posts": ["Posts.csv"]}
    assert folder_bytes(fits) == bound


@pytest.mark.parametrize("timeout", [0.3, 0.6])
def test_a_download_trickling_in_is_cut_off_as_stalled(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, timeout: float
) -> None:
    """Under CHUNK_BYTES in request_timeout seconds: the download fails as stalled,
    naming the export, the setting and the link without its query, and leaves no
    file behind."""
    monkeypatch.setattr(time, "sleep", REAL_SLEEP)  # the server trickles in real time
    archive = posts_archive(seeded(5), 10 * KiB)
    hostile.route(f"/files/{EXPORTS[0]}.zip", trickle(archive, every=0.05))
    run = hostile_run(hostile, EXPORTS[0])
    store = ArchiveStore(
        lambda export_id: hostile_run(hostile, export_id),
        timeout=timeout,
        max_retries=0,
        rate_limit_wait=0,
        max_uncompressed_bytes=1 << 34,
        logger=logging.getLogger("tests.download_rules"),
    )

    started = time.monotonic()
    with pytest.raises(OktopostError) as raised:
        store.archive(run)

    assert time.monotonic() - started < timeout + 2
    assert str(raised.value).startswith(
        f"Export {EXPORTS[0]}: downloading {redact(str(run.link))}: stalled, under "
        f"{1024 * 1024} bytes in {timeout:g} s (request_timeout)"
    )
    assert folder_bytes(store) == 0


def test_a_range_answer_longer_than_asked_is_cut_off(hostile: Hostile) -> None:
    """A 206 whose body goes on past the range asked is not read to its end: the
    read fails naming the export and the range, after a bounded read."""
    data = seeded(3).randbytes(HEAD + 4 * BLOCK)
    sent = 64 * 1024 * KiB

    def file(handler: HostileHandler) -> None:
        first, last = map(int, handler.headers["Range"].split("=")[1].split("-"))
        span = {"Content-Range": f"bytes {first}-{last}/{len(data)}"}
        if first == 0:
            handler.send_body(data[: last + 1], 206, span)
            return
        handler.send_head(206, span)
        handler.write(data[first : last + 1])
        for _ in range(sent // (64 * KiB)):
            handler.write(bytes(64 * KiB))

    hostile.route(f"/files/{EXPORTS[0]}.zip", file)
    link = hostile_run(hostile, EXPORTS[0]).link
    remote = RemoteFile(
        storage_session(),
        str(link),
        len(data),
        head=data[:HEAD],
        timeout=10,
        where=f"Export {EXPORTS[0]}: reading {redact(str(link))}",
        retry=lambda call: call(),
        relink=lambda: str(link),
    )

    remote.seek(HEAD + BLOCK)
    with pytest.raises(ArchiveReadError) as raised:
        remote.read(10)
    assert str(raised.value).startswith(
        f"Export {EXPORTS[0]}: reading {redact(str(link))}, bytes "
    )
    assert "an answer longer than asked" in str(raised.value)
    assert hostile.bytes_sent < sent // 4


# -- what an archive claims: max_uncompressed_bytes and the zip-bomb ratios ----------


def claiming(sizes: list[int], rng: random.Random) -> tuple[bytes, list[int]]:
    """A ZIP of stored CSV members of random bytes whose central directory claims
    `sizes` uncompressed; gives it and each member's compressed size."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as packed:
        for number in range(len(sizes)):
            packed.writestr(
                f"Part-{number}.csv", rng.randbytes(rng.randint(12, 20) * KiB)
            )
    data = bytearray(buffer.getvalue())
    compressed = []
    entry = data.find(b"PK\x01\x02")
    for size in sizes:
        compressed.append(struct.unpack_from("<I", data, entry + 20)[0])
        struct.pack_into("<I", data, entry + 24, size)
        entry = data.find(b"PK\x01\x02", entry + 4)
    return bytes(data), compressed


def claimed_archive(tmp_path: Path, data: bytes) -> ExportArchive:
    path = tmp_path / "run.zip"
    path.write_bytes(data)
    detail = {"Id": EXPORTS[0], "Type": "Posts", "LastRunDate": "2026-11-27"}
    return ExportArchive(ExportRun.from_detail(EXPORTS[0], detail), path)


@pytest.mark.parametrize("seed", range(4))
def test_an_archive_claiming_more_than_max_uncompressed_bytes_is_refused(
    tmp_path: Path, seed: int
) -> None:
    rng = seeded(seed)
    sizes = [rng.randint(1, 4 * KiB * KiB) for _ in range(rng.randint(1, 6))]
    data, _ = claiming(sizes, rng)
    archive = claimed_archive(tmp_path, data)

    archive.check_limits(sum(sizes))
    with pytest.raises(UnloadableExportError) as raised:
        archive.check_limits(sum(sizes) - 1)
    assert str(raised.value) == (
        f"Export {EXPORTS[0]} (Posts): its CSV files hold {sum(sizes)} bytes "
        f"uncompressed, over the max_uncompressed_bytes setting ({sum(sizes) - 1})"
    )


@pytest.mark.parametrize("seed", range(4))
def test_a_member_claiming_over_the_compression_ratio_is_refused(
    tmp_path: Path, seed: int
) -> None:
    """A member past RATIO_CHECK_BYTES inflating more than MAX_COMPRESSION_RATIO
    times is a likely bomb; exactly the ratio passes."""
    rng = seeded(seed)
    _, (compressed,) = claiming([1], seeded(seed))
    at_ratio = compressed * MAX_COMPRESSION_RATIO
    assert at_ratio > RATIO_CHECK_BYTES
    fits, _ = claiming([at_ratio], seeded(seed))
    claimed_archive(tmp_path, fits).check_limits(1 << 40)

    bomb, _ = claiming([at_ratio + rng.randint(1, compressed)], seeded(seed))
    with pytest.raises(UnloadableExportError) as raised:
        claimed_archive(tmp_path, bomb).check_limits(1 << 40)
    assert str(raised.value).startswith(f"Export {EXPORTS[0]} (Posts): Part-0.csv ")
    assert "refusing a likely zip bomb" in str(raised.value)


@pytest.mark.parametrize("seed", range(4))
def test_many_members_claiming_over_the_archive_ratio_are_refused(
    tmp_path: Path, seed: int
) -> None:
    """Members each under RATIO_CHECK_BYTES, together past ARCHIVE_RATIO_CHECK_BYTES
    and more than MAX_ARCHIVE_RATIO times their compressed bytes: refused; exactly
    the ratio passes."""
    count = seeded(seed).randint(8, 12)
    _, compressed = claiming([1] * count, seeded(seed))
    allowed = sum(compressed) * MAX_ARCHIVE_RATIO
    assert allowed > ARCHIVE_RATIO_CHECK_BYTES

    def spread(total: int) -> list[int]:
        sizes = [total // count] * count
        sizes[0] += total - sum(sizes)
        assert max(sizes) <= RATIO_CHECK_BYTES
        return sizes

    fits, _ = claiming(spread(allowed), seeded(seed))
    claimed_archive(tmp_path, fits).check_limits(1 << 40)
    bomb, _ = claiming(spread(allowed + 1), seeded(seed))
    with pytest.raises(UnloadableExportError) as raised:
        claimed_archive(tmp_path, bomb).check_limits(1 << 40)
    assert str(raised.value) == (
        f"Export {EXPORTS[0]} (Posts): its {count} CSV files claim {allowed + 1} "
        f"bytes from {sum(compressed)} compressed, over {MAX_ARCHIVE_RATIO} times "
        "in all: refusing a likely zip bomb of many members"
    )


# -- no signature, password or key in a log line -------------------------------------


def random_link(rng: random.Random) -> tuple[str, list[str]]:
    """A signed link of random shape, and the secrets in it."""
    secret = rng.randbytes(12).hex()
    user = rng.choice(["", f"user-{secret[:4]}:pw-{secret[4:]}@", f"u-{secret}@"])
    path = "/".join(
        rng.choice(["exports", "a b", "%2F..", "Отчёт", "run.zip"])
        for _ in range(rng.randint(1, 4))
    )
    query = "&".join(
        f"{name}={secret if name.endswith('Signature') else rng.randint(1, 99)}"
        for name in rng.sample(
            ["X-Amz-Date", "X-Amz-Signature", "sig", "token", "X-Goog-Signature"], 3
        )
    )
    link = f"https://{user}storage.example:{rng.randint(1, 65535)}/{path}?{query}"
    return link, [secret, *(part for part in user.strip("@").split(":") if part)]


@pytest.mark.parametrize("seed", range(30))
def test_a_redacted_link_keeps_host_and_path_and_no_query_or_user(seed: int) -> None:
    link, secrets = random_link(seeded(seed))

    shown = redact(link)

    assert "?" not in shown
    for secret in secrets:
        assert secret not in shown
    assert shown.startswith("https://storage.example:")
    assert shown.endswith(link.split("?", 1)[0].rsplit("/", 1)[1])


@pytest.mark.parametrize("seed", range(4))
def test_urllib3_debug_lines_show_signed_links_without_their_query(
    stand_in: OktopostStandIn, caplog: pytest.LogCaptureFixture, seed: int
) -> None:
    """urllib3 logs each request line at DEBUG, the signed link's query included:
    the tap's filter cuts the query from every such line, Range reads and all."""
    data = posts_archive(seeded(seed), 100 * KiB)
    run = add(stand_in, EXPORTS[seed], data)
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")

    archive = store_for(stand_in).archive(run, headers_only=bool(seed % 2))
    archive.delete()

    lines = [
        record.getMessage()
        for record in caplog.records
        if record.name == "urllib3.connectionpool"
    ]
    storage = [line for line in lines if "/storage/" in line]
    assert storage
    assert all("?<redacted>" in line for line in storage)
    assert not any("X-Amz" in line for line in lines)


def test_a_failed_download_logs_no_signed_link(
    stand_in: OktopostStandIn,
) -> None:
    """Storage that breaks off, then refuses, then is unreachable: every log line
    and the error name the export and the link without its signature."""
    add(stand_in, EXPORTS[0], posts_archive(seeded(1), 30 * KiB))
    stand_in.truncate_next_download()
    stand_in.fail_next("/storage/", 500, times=10)

    run = sync_in_process(config_for(stand_in, export_ids=EXPORTS[:1], max_retries=1))

    assert run.returncode == 1
    assert f"Export {EXPORTS[0]}: downloading http://127.0.0.1:" in run.stderr
    assert_no_secret_in(stand_in, run.stdout + run.stderr)


def assert_no_secret_in(stand_in: OktopostStandIn, text: str) -> None:
    for secret in secrets_of(stand_in):
        assert secret not in text


def test_chained_faults_in_process_log_no_secret(netrc: str) -> None:
    """Discovery reads the archive by Range; the sync finds storage refusing the
    connection (whose error text quotes the whole link), then a failed link
    refresh: at DEBUG, no log line holds the signature, key or password."""
    with hostile_pair() as (hostile, _):
        faults = ChainedFaults(hostile, "032000000000777")
        listed = [{"Id": faults.export_id, "Status": "active"}]
        hostile.route("/v2/bi-export", json_answer(listed, key="Exports", Total=1))
        run = sync_in_process(config_of(hostile, max_retries=1))

    assert run.returncode == 1
    assert faults.details >= 3  # discovery's, the sync's, the failed refresh
    assert "HTTP 500 from Oktopost" in run.stderr
    assert_no_secret(hostile, run.stdout + run.stderr)
    assert SIGNATURE not in run.stderr
    for seen in hostile.seen:
        if seen.path.startswith("/files/"):
            assert "Authorization" not in seen.headers


@pytest.mark.parametrize("seed", range(4))
def test_storage_refusing_the_connection_is_logged_without_the_link(
    stand_in: OktopostStandIn, seed: int
) -> None:
    """A refused connection's error text quotes the whole link: the export's
    error names the fault and the export, never the signature or a password."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    signature = "".join(rng.choices("0123456789abcdef", k=40))
    password = f"pw{rng.randrange(10**6)}"
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed = probe.getsockname()[1]
    probe.close()
    link = (
        f"http://user:{password}@127.0.0.1:{closed}/bucket/{EXPORTS[0]}.zip"
        f"?X-Amz-Expires=300&X-Amz-Signature={signature}"
    )
    stand_in.add_export(
        StandInExport(
            id=EXPORTS[0],
            last_run_date="2026-11-27 10:00:00",
            archive=posts_archive(seeded(seed), 4 * KiB),
            detail_fields={"LastRunFile": link},
        )
    )

    run = sync_in_process(config_for(stand_in, export_ids=EXPORTS[:1], max_retries=0))

    assert run.returncode == 1
    assert f"Export {EXPORTS[0]}: downloading http://127.0.0.1:{closed}/" in run.stderr
    assert "ConnectionError" in run.stderr
    for secret in (signature, password, "X-Amz-Signature"):
        assert secret not in run.stdout + run.stderr

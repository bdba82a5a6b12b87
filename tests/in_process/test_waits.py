"""Waits with an end: a Retry-After past the cap fails the call at once, and says when.

API calls, whole downloads and Range reads all ask: seconds or an HTTP date, drawn
(seeded) from both sides of MAX_RETRY_AFTER_SECONDS. Sleeps are recorded, never
slept.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import random
import re
import time

import pytest

from tap_oktopost.api.errors import OktopostError, RetriableOktopostError
from tap_oktopost.api.retry import MAX_RETRY_AFTER_SECONDS
from tap_oktopost.archives.download import ArchiveStore
from tests.conftest import config_for, export_with, sync_in_process
from tests.in_process.test_archives import fetch_run
from tests.in_process.test_client import NOW, FakeClock, client_for
from tests.stand_ins.oktopost_stand_in import OktopostStandIn

EXPORT = "032000000000101"
_RNG = random.Random(20261205)  # noqa: S311 - test data, not secrets
YEAR_9999 = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)


def http_date(moment: float) -> str:
    return email.utils.formatdate(moment, usegmt=True)


TOO_LONG_SECONDS = [3601, 3700, 86_400, 10**9, 10**12, 10**20] + [
    _RNG.randint(3601, 10**10) for _ in range(8)
]
TOO_LONG_DATES = [NOW + 3602, NOW + 10**9, YEAR_9999.timestamp()] + [
    datetime.datetime(
        _RNG.randint(2030, 9999), _RNG.randint(1, 12), 1, tzinfo=datetime.timezone.utc
    ).timestamp()
    for _ in range(8)
]
WITHIN_SECONDS = [0, 1, 59, 3599, 3600] + [_RNG.randint(0, 3600) for _ in range(6)]
WITHIN_DATES = [NOW + 1, NOW + 3600] + [NOW + _RNG.randint(1, 3600) for _ in range(4)]
TOO_LONG = [(str(seconds), float(seconds)) for seconds in TOO_LONG_SECONDS] + [
    (http_date(moment), moment - NOW) for moment in TOO_LONG_DATES
]
WITHIN = [(str(seconds), float(seconds)) for seconds in WITHIN_SECONDS] + [
    (http_date(moment), moment - NOW) for moment in WITHIN_DATES
]


def try_again_after(asked: float, now: float) -> str:
    """The time the error must name, or its words past the calendar's end."""
    if now + asked > YEAR_9999.timestamp() + 1:
        return "try again after the year 9999"
    moment = datetime.datetime.fromtimestamp(now + asked, datetime.timezone.utc)
    return f"try again after {moment:%Y-%m-%d %H:%M:%S} UTC"


def asked_text(asked: float) -> str:
    return f"{asked:.1f}".removesuffix(".0")


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(("header", "asked"), TOO_LONG)
def test_an_api_call_asked_to_wait_past_the_cap_fails_at_once(
    stand_in: OktopostStandIn, status: int, header: str, asked: float
) -> None:
    clock = FakeClock()
    stand_in.fail_next("/v2/me", status, headers={"Retry-After": header})

    with pytest.raises(OktopostError) as raised:
        client_for(stand_in, clock, max_retries=5).check_credentials()

    message = str(raised.value)
    assert not isinstance(raised.value, RetriableOktopostError)
    assert message.startswith("Checking credentials (GET /me): ")
    assert f"its Retry-After header asks for a wait of {asked_text(asked)} s" in (
        message
    )
    assert "past the tap's cap of 3600 s" in message
    assert try_again_after(asked, NOW) in message
    assert clock.slept == []
    assert len(stand_in.api_calls()) == 1


@pytest.mark.parametrize(("header", "asked"), WITHIN)
def test_an_api_call_asked_to_wait_up_to_the_cap_waits_as_asked(
    stand_in: OktopostStandIn, header: str, asked: float
) -> None:
    clock = FakeClock()
    stand_in.fail_next("/v2/me", 429, headers={"Retry-After": header})

    client_for(stand_in, clock).check_credentials()

    assert clock.slept == [pytest.approx(asked)]
    assert asked <= MAX_RETRY_AFTER_SECONDS
    assert len(stand_in.api_calls()) == 2


def store_for(stand_in: OktopostStandIn, slept: list[float]) -> ArchiveStore:
    return ArchiveStore(
        lambda export_id: fetch_run(stand_in, export_id),
        timeout=10,
        max_retries=3,
        rate_limit_wait=0,
        max_uncompressed_bytes=1 << 30,
        logger=logging.getLogger("tests.waits"),
        sleep=slept.append,
    )


def served(stand_in: OktopostStandIn) -> None:
    # Large enough that discovery reads it by Range, in more than one block.
    noise = random.Random(7).randbytes(300_000)  # noqa: S311
    stand_in.add_export(
        export_with(EXPORT, {"a.csv": "x\n1\n", "noise.bin": noise}),
    )


def read_remotely(store: ArchiveStore, stand_in: OktopostStandIn) -> bytes:
    """Open the archive by Range reads, as discovery does, and read a member."""
    archive = store.archive(fetch_run(stand_in, EXPORT), headers_only=True)
    assert archive.zip_file is not None
    return archive.zip_file.read("noise.bin")


def storage_header(asked: float, form: str) -> tuple[str, float]:
    """Storage reads dates by the real clock: a date `asked` seconds from now.

    A date past year 9999 is that year's last second, and the wait is its own.
    """
    if form == "seconds":
        return str(int(asked)), asked
    # An HTTP date holds whole seconds and is read a moment after it is made: one
    # past the cap is made DATE_SLACK further out, so it is past it when read.
    slack = DATE_SLACK if asked > MAX_RETRY_AFTER_SECONDS else 0.0
    moment = min(time.time() + asked + slack, YEAR_9999.timestamp())
    return http_date(moment), moment - time.time()


DATE_SLACK = 10.0


def asked_in(message: str) -> float:
    found = re.search(r"asks for a wait of ([0-9.]+) s", message)
    assert found is not None, message
    return float(found.group(1))


STORAGE_TOO_LONG = [3601.0, 86_400.0, 1e9, 1e12, *TOO_LONG_SECONDS[6:10]]
FORMS = ["seconds", "date"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("asked", STORAGE_TOO_LONG)
@pytest.mark.parametrize("status", [429, 503])
def test_a_download_asked_to_wait_past_the_cap_fails_at_once(
    stand_in: OktopostStandIn, asked: float, form: str, status: int
) -> None:
    served(stand_in)
    header, asked = storage_header(asked, form)
    stand_in.fail_next("/storage/", status, headers={"Retry-After": header})
    slept: list[float] = []

    with pytest.raises(OktopostError) as raised:
        store_for(stand_in, slept).archive(fetch_run(stand_in, EXPORT))

    message = str(raised.value)
    assert f"Export {EXPORT}" in message
    assert f"HTTP {status} from the file storage" in message
    assert asked_in(message) == pytest.approx(asked, abs=2)
    assert "past the tap's cap of 3600 s" in message
    assert try_again_after(asked, time.time())[:-9] in message  # to the minute
    assert "X-Amz" not in message
    assert slept == []
    assert len(stand_in.downloads()) == 1


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("asked", STORAGE_TOO_LONG[::2])
def test_a_range_read_asked_to_wait_past_the_cap_fails_at_once(
    stand_in: OktopostStandIn, asked: float, form: str
) -> None:
    served(stand_in)
    header, asked = storage_header(asked, form)
    stand_in.fail_next_block(503, headers={"Retry-After": header})
    slept: list[float] = []
    store = store_for(stand_in, slept)

    with pytest.raises(OktopostError) as raised:
        read_remotely(store, stand_in)

    message = str(raised.value)
    assert asked_in(message) == pytest.approx(asked, abs=2)
    assert "past the tap's cap of 3600 s" in message
    assert slept == []
    ranged = [r for r in stand_in.downloads() if "Range" in r.headers]
    assert ranged[-1].status == 503


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("asked", [5.0, 600.0, 3590.0])
def test_storage_asking_to_wait_up_to_the_cap_is_waited_for(
    stand_in: OktopostStandIn, asked: float, form: str
) -> None:
    served(stand_in)
    header, asked = storage_header(asked, form)
    stand_in.fail_next("/storage/", 503, headers={"Retry-After": header})
    stand_in.fail_next_block(503, headers={"Retry-After": header})
    slept: list[float] = []
    store = store_for(stand_in, slept)

    whole = store.archive(fetch_run(stand_in, EXPORT))
    remote = read_remotely(store_for(stand_in, slept), stand_in)

    assert whole.zip_file is not None
    assert whole.zip_file.read("a.csv") == b"x\n1\n"
    assert len(remote) == 300_000
    assert slept == [pytest.approx(asked, abs=2)] * 2


def test_a_sync_whose_export_is_asked_to_wait_for_years_fails_that_export(
    stand_in: OktopostStandIn,
) -> None:
    stand_in.add_export(export_with(EXPORT, {"a.csv": "x\n1\n"}))
    other = "032000000000102"
    stand_in.add_export(export_with(other, {"a.csv": "x\n2\n"}))
    stand_in.fail_next(
        f"/storage/{EXPORT}/", 429, times=5, headers={"Retry-After": "1000000000"}
    )
    started = time.monotonic()

    run = sync_in_process(config_for(stand_in))

    assert time.monotonic() - started < 30
    assert run.returncode == 1
    assert [record["x"] for record in run.records("a")] == [2]
    assert run.bookmark(other) is not None
    assert run.bookmark(EXPORT) is None
    assert "asks for a wait of 1000000000 s, past the tap's cap of 3600 s" in (
        run.stderr
    )

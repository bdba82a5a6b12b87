"""Within the API budget: few calls, and a pace that never meets Oktopost's 429.

The throttle's call log carries the count from discovery to the sync, as Meltano
runs them: two processes, here two taps in one process sharing the log folder.
The stand-in's rate limit counts calls in any sliding window; the windows are
scaled down (the module's constants) so a test takes seconds, not minutes.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tap_oktopost.api import retry
from tap_oktopost.api.retry import (
    CALL_WINDOW_MARGIN_SECONDS,
    CALL_WINDOW_SECONDS,
    CALLS_PER_WINDOW,
    CallThrottle,
    call_log_path,
)
from tests.conftest import (
    config_for,
    csv_text,
    discover_in_process,
    export_with,
    sync_in_process,
)
from tests.in_process.test_client import FakeClock, client_for
from tests.stand_ins.oktopost_stand_in import OktopostStandIn

LOG = "calls.log"


def assert_paced(times: list[float], calls: int, span: float) -> None:
    """No `calls + 1` calls within `span` seconds, anywhere in the timeline."""
    ordered = sorted(times)
    for first, last in zip(ordered, ordered[calls:], strict=False):
        assert last - first >= span - 1e-5, (first, last)  # wall-clock floats


@pytest.mark.parametrize(
    ("calls", "window", "margin"),
    [(CALLS_PER_WINDOW, CALL_WINDOW_SECONDS, CALL_WINDOW_MARGIN_SECONDS), (5, 1, 0.1)],
)
def test_a_second_process_waits_for_the_calls_of_the_first(
    tmp_path: Path, calls: int, window: float, margin: float
) -> None:
    clock = FakeClock()
    limits: dict[str, Any] = {"calls": calls, "window": window, "margin": margin}
    discovery = CallThrottle(tmp_path / LOG, clock=clock, sleep=clock.sleep, **limits)
    made = []
    for _ in range(calls):
        discovery.wait_for_turn()
        made.append(clock.now)
    sync = CallThrottle(tmp_path / LOG, clock=clock, sleep=clock.sleep, **limits)

    sync.wait_for_turn()

    assert clock.slept == [pytest.approx(window + margin)]
    assert_paced([*made, clock.now], calls, window + margin)


@pytest.mark.parametrize("seed", range(12))
def test_processes_taking_turns_keep_every_window_under_the_limit(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    clock = FakeClock()
    calls, window, margin = rng.randint(2, 12), rng.uniform(1, 60), rng.uniform(0, 2)
    limits: dict[str, Any] = {"calls": calls, "window": window, "margin": margin}
    processes: list[CallThrottle] = []
    made = []
    for _ in range(rng.randint(40, 120)):
        if not processes or rng.random() < 0.1:  # a new process of the account
            processes.append(
                CallThrottle(tmp_path / LOG, clock=clock, sleep=clock.sleep, **limits)
            )
        rng.choice(processes).wait_for_turn()
        made.append(clock.now)
        clock.now += rng.expovariate(calls / window * 3)

    assert_paced(made, calls, window + margin)
    assert made[-1] >= (len(made) // calls - 1) * (window + margin)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff\xfe garbage\n",
        b"nan\ninf\n-inf\n\n--\n1e400\n",
        b"12.5\n13",
        "\u00e9t\u00e9\n".encode(),
        b"",
    ],
)
def test_a_garbled_log_counts_only_the_times_it_can_read(
    tmp_path: Path, garbage: bytes
) -> None:
    clock = FakeClock()
    first = CallThrottle(tmp_path / LOG, calls=3, window=10, margin=0, clock=clock)
    for _ in range(3):
        first.wait_for_turn()
    log = tmp_path / LOG
    log.write_bytes(garbage + b"\n" + log.read_bytes() + garbage)
    second = CallThrottle(
        tmp_path / LOG, calls=3, window=10, margin=0, clock=clock, sleep=clock.sleep
    )

    second.wait_for_turn()

    assert clock.slept == [pytest.approx(10)]


def test_times_in_the_future_and_long_past_are_dropped(tmp_path: Path) -> None:
    clock = FakeClock()
    throttle = CallThrottle(
        tmp_path / LOG, calls=2, window=10, margin=0, clock=clock, sleep=clock.sleep
    )
    now = clock.now + throttle.offset
    future = [now + 3600 * day for day in range(1, 50)]
    past = [now - 11 - hour * 3600 for hour in range(50)]
    (tmp_path / LOG).write_text("".join(f"{t!r}\n" for t in future + past))

    throttle.wait_for_turn()
    throttle.wait_for_turn()

    assert clock.slept == []
    assert len((tmp_path / LOG).read_text().splitlines()) == 2


def test_an_unusable_log_leaves_the_process_counting_alone(tmp_path: Path) -> None:
    clock = FakeClock()
    throttle = CallThrottle(
        tmp_path / "missing" / LOG,
        calls=3,
        window=10,
        margin=1,
        clock=clock,
        sleep=clock.sleep,
    )
    for _ in range(7):
        throttle.wait_for_turn()

    assert clock.slept == [pytest.approx(11), pytest.approx(11)]
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_a_link_planted_at_the_log_is_never_written_through(
    tmp_path: Path, link: str
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    if link == "symbolic":
        (tmp_path / LOG).symlink_to(victim)
    else:
        os.link(victim, tmp_path / LOG)
    clock = FakeClock()
    throttle = CallThrottle(
        tmp_path / LOG, calls=2, window=10, margin=0, clock=clock, sleep=clock.sleep
    )

    for _ in range(3):
        throttle.wait_for_turn()

    assert victim.read_text() == "precious\n"
    assert clock.slept == [pytest.approx(10)]


def test_the_call_log_holds_times_only_under_a_name_without_secrets(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    client_for(stand_in, FakeClock()).check_credentials()

    logs = list(tmp_path.glob("tap-oktopost-calls-*"))
    assert logs == [call_log_path(stand_in.base_url, stand_in.account_id)]
    for secret in (stand_in.api_key, stand_in.account_id, "127.0.0.1"):
        assert secret not in logs[0].name
        assert secret not in logs[0].read_text()
    assert [float(line) for line in logs[0].read_text().splitlines()]
    assert logs[0].stat().st_mode & 0o077 == 0
    other = call_log_path(stand_in.base_url, "another-account")
    assert other != logs[0]
    assert call_log_path(stand_in.base_url + "/", stand_in.account_id) == logs[0]
    assert str(os.getuid()) in logs[0].name


# -- discovery and sync against a rate limit, windows scaled down ---------------

EXPORTS = 20
PAGE_SIZE = 5
PAGES = EXPORTS // PAGE_SIZE + 1  # the last page is empty: 20 is a multiple of 5
CALLS, WINDOW, MARGIN = 10, 1.0, 0.3


def account(
    stand_in: OktopostStandIn, monkeypatch: pytest.MonkeyPatch, window: float = WINDOW
) -> None:
    """Twenty exports on pages of five; 10 calls a `window`, as 60 a minute."""
    for number in range(1, EXPORTS + 1):
        rows = [["id", "n"], *[[f"{number}-{row}", str(row)] for row in range(3)]]
        stand_in.add_export(
            export_with(f"032{number:012d}", {"figures.csv": csv_text(rows)})
        )
    stand_in.page_size = PAGE_SIZE
    stand_in.rate_limit(CALLS, window)
    monkeypatch.setattr(retry, "CALLS_PER_WINDOW", CALLS)
    monkeypatch.setattr(retry, "CALL_WINDOW_SECONDS", window)
    monkeypatch.setattr(retry, "CALL_WINDOW_MARGIN_SECONDS", MARGIN)


@pytest.mark.slow  # it keeps a real pace: a few seconds
def test_discovery_then_sync_stay_within_the_budget(
    stand_in: OktopostStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    account(stand_in, monkeypatch)
    config = config_for(stand_in, rate_limit_wait_seconds=0.5)

    catalog = discover_in_process(config)
    discovery_calls = len(stand_in.api_calls())
    run = sync_in_process(config, catalog=catalog)

    assert stand_in.rate_limited == 0
    assert run.returncode == 0, run.stderr[-2000:]
    assert "HTTP 429" not in run.stderr
    rows = Counter(record["export_id"] for record in run.records("figures"))
    assert rows == {f"032{number:012d}": 3 for number in range(1, EXPORTS + 1)}
    paths = Counter(request.path.partition("?")[0] for request in stand_in.api_calls())
    assert paths["/v2/bi-export"] == 2 * PAGES  # one listing a process
    assert sum(paths.values()) <= 2 * EXPORTS + 2 * PAGES
    assert discovery_calls == EXPORTS + PAGES


@pytest.mark.slow  # it keeps a real pace: a few seconds
def test_a_sync_that_forgot_discovery_calls_would_meet_the_limit(
    stand_in: OktopostStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same account, but the sync counts its calls alone: a 429 comes.

    This is what the call log prevents (the test above): it shows the stand-in's
    rate limit bites, and that a 429 is waited out. A longer window, so that the
    sync starts well within the window of discovery's last calls.
    """
    account(stand_in, monkeypatch, window=3.0)
    config = config_for(stand_in, rate_limit_wait_seconds=0.5, max_retries=20)
    catalog = discover_in_process(config)
    monkeypatch.setattr(retry, "CALL_LOG_DIR", tmp_path / "elsewhere")
    (tmp_path / "elsewhere").mkdir()

    run = sync_in_process(config, catalog=catalog)

    assert stand_in.rate_limited > 0
    assert "Oktopost's rate limit (HTTP 429)" in run.stderr
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.records("figures")) == 3 * EXPORTS

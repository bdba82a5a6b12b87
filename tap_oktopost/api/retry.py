"""HTTP policy for the Oktopost API and its object storage: errors, waits, retries.

One place decides which answers are retried (408, 429, 5xx; on storage also 403, an
expired link), how long to wait (Retry-After, the rate-limit lockout, or jittered
backoff) and what advice a fatal answer carries, so the API client and the downloads
agree.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import fcntl
import hashlib
import logging
import math
import os
import random
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tap_oktopost.api.errors import (
    ExpiredLinkError,
    OktopostError,
    RateLimitedError,
    RetriableOktopostError,
    printable,
)
from tap_oktopost.api.transport import DEFAULT_TIMEOUT_SECONDS, EU_BASE_URL, US_BASE_URL

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

DEFAULT_MAX_RETRIES = 5
DEFAULT_RATE_LIMIT_WAIT_SECONDS = 900.0
"""Oktopost locks a key that went over its rate limit for about 15 minutes."""
MAX_BACKOFF_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 3600.0
"""The longest Retry-After the tap waits out; a longer one fails the call at once,
saying when to try again, rather than leave an orchestrator watching a hung task."""
CALLS_PER_WINDOW = 60
CALL_WINDOW_SECONDS = 60.0
"""Oktopost allows a key 60 calls a minute, counted in any sliding minute."""
CALL_WINDOW_MARGIN_SECONDS = 2.0
"""Added to the window: a call is logged before it is sent and reaches Oktopost a
little later, so the server's minute may start after the tap's."""
CALL_LOG_DIR: Path | None = None
"""Where the call logs shared by the tap's processes live; None: the temp folder."""
MAX_QUOTED = 500
"""Characters of Oktopost's own error text quoted in a message, at most."""
RETRIED_STATUSES = frozenset({408, 429})
"""Besides every 5xx: answers that may pass if asked again."""
_SECONDS = re.compile(r"[0-9]+")
T = TypeVar("T")


def is_retried_status(status: int) -> bool:
    """Say whether an HTTP status may pass if the same request is made again."""
    return status in RETRIED_STATUSES or status >= 500


def retry_after_seconds(
    header: str | None, now: Callable[[], float] = time.time
) -> float | None:
    """Read a Retry-After header (seconds or an HTTP date); None if unreadable.

    Never raises, whatever the server sends; a date in the past means no wait.
    The value is not capped here: `retry_wait` caps it and says so.
    """
    if header is None:
        return None
    text = header.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    parsed = email.utils.parsedate_tz(text)
    if parsed is None:
        return None
    try:
        moment = email.utils.mktime_tz(parsed)
    except (OverflowError, ValueError, TypeError):
        return None
    return max(0.0, moment - now())


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.1f}".removesuffix(".0")


def too_long_a_wait(
    error: RetriableOktopostError, now: Callable[[], float] = time.time
) -> OktopostError | None:
    """Make the error for a Retry-After past MAX_RETRY_AFTER_SECONDS, else None.

    It says what the server asked, the cap, and from when a new try may pass.
    """
    asked = error.retry_after
    if asked is None or asked <= MAX_RETRY_AFTER_SECONDS:
        return None
    try:
        moment = datetime.datetime.fromtimestamp(now() + asked, datetime.timezone.utc)
        when = f"after {moment:%Y-%m-%d %H:%M:%S} UTC"
    except (OverflowError, ValueError, OSError):
        when = "after the year 9999, as the server has it"
    message = (
        f"{error}: its Retry-After header asks for a wait of "
        f"{_format_seconds(asked)} s, past the tap's cap of "
        f"{_format_seconds(MAX_RETRY_AFTER_SECONDS)} s, so the call fails now "
        f"instead of waiting; try again {when}"
    )
    return OktopostError(message)


def retry_wait(
    error: RetriableOktopostError,
    attempt: int,
    *,
    rate_limit_wait: float,
    jitter: Callable[[float, float], float] = random.uniform,
) -> tuple[float, str]:
    """Choose the wait before retry number `attempt + 1`, and say why for the log.

    Retry-After wins (`too_long_a_wait` refuses one past the cap first); a 429
    without it waits `rate_limit_wait`; anything else backs off exponentially
    with full jitter.
    """
    if error.retry_after is not None:
        return error.retry_after, " as its Retry-After header asks"
    if isinstance(error, RateLimitedError):
        reason = (
            " (rate_limit_wait_seconds), for Oktopost's lockout of a key that went "
            "over its rate limit to pass"
        )
        return rate_limit_wait, reason
    # The inner min keeps 2.0**attempt finite for any max_retries setting.
    ceiling = min(2.0 ** min(attempt, 32), MAX_BACKOFF_SECONDS)
    return jitter(0.0, ceiling), ""


def retrying(
    call: Callable[[], T],
    *,
    max_retries: int,
    rate_limit_wait: float,
    logger: logging.Logger,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[float, float], float] = random.uniform,
    now: Callable[[], float] = time.time,
) -> T:
    """Run `call`, retrying RetriableOktopostError up to `max_retries` times.

    A Retry-After past MAX_RETRY_AFTER_SECONDS ends the call at once. A
    hand-written loop rather than `backoff`: the wait needs the exception (for
    Retry-After), the sleep must be injectable for tests, and the two packages that
    install a `backoff` module hand the exception to handlers differently.
    """
    attempt = 0
    while True:
        try:
            return call()
        except RetriableOktopostError as error:
            failure = error
        # Raised out of the handler, as every error of this module: no chained
        # exception quoting a URL for a log formatter to print.
        if (refusal := too_long_a_wait(failure, now)) is not None:
            raise refusal
        if attempt >= max_retries:
            raise failure
        wait, reason = retry_wait(
            failure, attempt, rate_limit_wait=rate_limit_wait, jitter=jitter
        )
        attempt += 1
        logger.warning(
            "%s: retry %d of %d in %s s%s",
            failure,
            attempt,
            max_retries,
            _format_seconds(wait),
            reason,
        )
        sleep(wait)


_WALL_CLOCK_LEAD = time.time() - time.monotonic()
"""Read once a process, so that every throttle of the process agrees on it."""


def call_log_path(base_url: str, account_id: str) -> Path:
    """Name the call log of an account: a hash of base_url and account, no secret."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\n{account_id}".encode())
    folder = CALL_LOG_DIR if CALL_LOG_DIR is not None else Path(tempfile.gettempdir())
    return folder / f"tap-oktopost-calls-{os.getuid()}-{digest.hexdigest()[:32]}"


class CallThrottle:
    """Keeps an account under Oktopost's 60 calls in any minute, across processes.

    Meltano runs discovery and the sync as two processes, one right after the
    other: with `log`, each call's time goes into that file (see `call_log_path`),
    read and rewritten under an exclusive `fcntl` lock, so the sync counts the
    calls discovery just made. A missing, unreadable or garbled log counts as no
    calls, and times in the future are dropped. Without `log`, or when the file
    cannot be used or is a link (see `_own_plain_file`), this process counts
    alone. Other tools sharing the key can still cause a 429, which `retrying`
    waits out.

    The limits default to the module's constants at construction, so that a test
    can shrink the window. `clock` (monotonic) and `sleep` are injectable; the log
    holds wall-clock times, the clock plus the wall clock's lead on the monotonic
    one, which processes of one machine share.
    """

    def __init__(
        self,
        log: Path | None = None,
        *,
        calls: int | None = None,
        window: float | None = None,
        margin: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.log = log
        self.calls = CALLS_PER_WINDOW if calls is None else calls
        self.window = CALL_WINDOW_SECONDS if window is None else window
        self.margin = CALL_WINDOW_MARGIN_SECONDS if margin is None else margin
        self.clock = clock
        self.sleep = sleep
        self.offset = _WALL_CLOCK_LEAD
        self.own: list[float] = []

    def wait_for_turn(self) -> None:
        """Sleep until one more call keeps every window under its limit; log it."""
        span = self.window + self.margin
        while True:
            with self._times() as times:
                now = self.clock() + self.offset
                times[:] = sorted(t for t in times if now - span < t <= now + 1.0)
                if len(times) < self.calls:
                    times.append(now)
                    return
                wait = times[len(times) - self.calls] + span - now
            self.sleep(wait)

    @contextlib.contextmanager
    def _times(self) -> Iterator[list[float]]:
        """Give the logged call times, to change in place; written back after."""
        if self.log is None:
            yield self.own
            return
        try:
            descriptor = os.open(
                self.log, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600
            )
        except OSError:
            yield self.own
            return
        with os.fdopen(descriptor, "r+b") as file:
            times: list[float] | None = None
            try:
                if _own_plain_file(os.fstat(descriptor)):
                    fcntl.flock(file, fcntl.LOCK_EX)
                    times = _read_times(file.read(64 * 1024))
            except OSError:
                times = None
            if times is None:
                yield self.own
                return
            yield times
            with contextlib.suppress(OSError):  # a full disk: the log counts less
                file.seek(0)
                file.truncate()
                file.write("".join(f"{t!r}\n" for t in times).encode())
            self.own = times  # the last count seen, should the log become unusable


def _own_plain_file(status: os.stat_result) -> bool:
    """Say whether a call log is safe to rewrite: no link another user planted.

    The temp folder is shared; a symlink there is refused by O_NOFOLLOW, and a
    hard link or a file of another user here, so no other file is ever written.
    """
    return (
        stat.S_ISREG(status.st_mode)
        and status.st_uid == os.getuid()
        and status.st_nlink == 1
    )


def _read_times(data: bytes) -> list[float]:
    """Read a call log's times, one a line; skip what is not a finite number."""
    times = []
    for line in data.decode("ascii", "replace").splitlines():
        try:
            value = float(line)
        except ValueError:
            continue
        if math.isfinite(value):
            times.append(value)
    return times


def oktopost_message(body: Any) -> str:
    """Flatten Oktopost's `Errors` (an object of objects, a list, or absent)."""
    errors = body.get("Errors") if isinstance(body, dict) else None
    parts: list[str] = []

    def collect(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                collect(item, f"{where}.{key}" if where else str(key))
        elif isinstance(value, list):
            for item in value:
                collect(item, where)
        elif value not in (None, ""):
            parts.append(f"{where}: {value}" if where else str(value))

    collect(errors, "")
    said = printable("; ".join(parts)) or "no error message"
    return said if len(said) <= MAX_QUOTED else f"{said[:MAX_QUOTED]}..."


def _api_advice(status: int, path: str) -> str:
    """Say what to check after a refused API call; a 404's cause is in its path."""
    if status == 401:
        return (
            "check the account_id and api_key settings, and that base_url is your "
            "account's region (US or EU)"
        )
    if status == 403:
        return (
            "the API key's user lacks permission for this; check its role in Oktopost"
        )
    if status == 404 and path.startswith("/bi-export/"):
        return (
            "check the export id (export_ids / test_export_id settings) and that the "
            "API key's user can see it; if every export gets this, check base_url"
        )
    if status == 404:
        return (
            f"no such API path: check the base_url setting, the API root ending in "
            f"/v2 ({US_BASE_URL} or {EU_BASE_URL})"
        )
    return "Oktopost rejected the request"


def api_status_error(
    status: int,
    *,
    path: str,
    what: str,
    oktopost_said: str,
    retry_after: float | None = None,
) -> OktopostError:
    """Make the error for an API answer of HTTP 400 or more: retried, or advice."""
    if status == 429:
        message = f"{what}: Oktopost's rate limit (HTTP 429)"
        return RateLimitedError(message, retry_after)
    if is_retried_status(status):
        return RetriableOktopostError(
            f"{what}: HTTP {status} from Oktopost", retry_after
        )
    advice = _api_advice(status, path)
    return OktopostError(
        f"{what}: HTTP {status}, {advice}. Oktopost said: {oktopost_said}"
    )


def storage_status_error(
    status: int, where: str, retry_after: float | None = None
) -> OktopostError:
    """Make the error for a signed-link answer that is not the file.

    403 is an expired link (ExpiredLinkError: ask the API for a fresh one), 408, 429
    and 5xx may pass (RetriableOktopostError), any other status is fatal. A 429 here
    is the store's, not Oktopost's: without Retry-After it backs off, no lockout wait.
    """
    if status == 403:
        message = f"{where}: HTTP 403, the signed link expired or was refused"
        return ExpiredLinkError(message, retry_after)
    if is_retried_status(status):
        message = f"{where}: HTTP {status} from the file storage"
        return RetriableOktopostError(message, retry_after)
    if status in {404, 410}:
        message = (
            f"{where}: HTTP {status}, the file is gone from storage; a newer run "
            "may have replaced it, and the next sync loads that"
        )
        return OktopostError(message)
    return OktopostError(f"{where}: HTTP {status}, the file storage refused the link")


def retry_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Give the timeout and retry settings, with defaults, as keyword arguments.

    The SDK reads a JSON config's fractions as Decimal, which `time.sleep` and
    socket timeouts refuse: they are made plain numbers here.
    """
    return {
        "timeout": float(config.get("request_timeout", DEFAULT_TIMEOUT_SECONDS)),
        "max_retries": int(config.get("max_retries", DEFAULT_MAX_RETRIES)),
        "rate_limit_wait": float(
            config.get("rate_limit_wait_seconds", DEFAULT_RATE_LIMIT_WAIT_SECONDS)
        ),
    }

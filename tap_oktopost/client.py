"""HTTP policy for the Oktopost API and its object storage: errors, waits, retries.

One place decides which answers are retried (408, 429, 5xx; on storage also 403, an
expired link), how long to wait (Retry-After, the rate-limit lockout, or jittered
backoff) and what advice a fatal answer carries, so the API client and the downloads
agree.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import requests
from requests.auth import AuthBase, HTTPBasicAuth

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

US_BASE_URL = "https://api.oktopost.com/v2"
EU_BASE_URL = "https://eu-api.oktopost.com/v2"
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_RATE_LIMIT_WAIT_SECONDS = 900.0
"""Oktopost locks a key that went over its rate limit for about 15 minutes."""
MAX_BACKOFF_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 3600.0
"""A longer Retry-After is a server fault or a date typo; the tap waits this long."""
CALLS_PER_MINUTE = 60
RETRIED_STATUSES = frozenset({408, 429})
"""Besides every 5xx: answers that may pass if asked again."""
_SECONDS = re.compile(r"[0-9]+")
T = TypeVar("T")


class OktopostError(Exception):
    """An Oktopost answer the tap cannot use; the message says what to check."""


class RetriableOktopostError(OktopostError):
    """A fault that may pass: server error, network trouble, a cut-off download.

    `retry_after` is the pause the server asked for, in seconds, if it asked.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitedError(RetriableOktopostError):
    """HTTP 429 from the API: without Retry-After, wait out the key's lockout."""


class ExpiredLinkError(RetriableOktopostError):
    """HTTP 403 from storage: the signed link expired; ask the API for a fresh one."""


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


def retry_wait(
    error: RetriableOktopostError,
    attempt: int,
    *,
    rate_limit_wait: float,
    jitter: Callable[[float, float], float] = random.uniform,
) -> tuple[float, str]:
    """Choose the wait before retry number `attempt + 1`, and say why for the log.

    Retry-After wins, capped at MAX_RETRY_AFTER_SECONDS; a 429 without it waits
    `rate_limit_wait`; anything else backs off exponentially with full jitter.
    """
    if error.retry_after is not None:
        if error.retry_after > MAX_RETRY_AFTER_SECONDS:
            reason = (
                f" (its Retry-After header asks {_format_seconds(error.retry_after)} s,"
                f" capped at {_format_seconds(MAX_RETRY_AFTER_SECONDS)} s)"
            )
            return MAX_RETRY_AFTER_SECONDS, reason
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
) -> T:
    """Run `call`, retrying RetriableOktopostError up to `max_retries` times.

    A hand-written loop rather than `backoff`: the wait needs the exception (for
    Retry-After), the sleep must be injectable for tests, and the two packages that
    install a `backoff` module hand the exception to handlers differently.
    """
    attempt = 0
    while True:
        try:
            return call()
        except RetriableOktopostError as error:
            if attempt >= max_retries:
                raise
            wait, reason = retry_wait(
                error, attempt, rate_limit_wait=rate_limit_wait, jitter=jitter
            )
            attempt += 1
            logger.warning(
                "%s: retry %d of %d in %s s%s",
                error,
                attempt,
                max_retries,
                _format_seconds(wait),
                reason,
            )
            sleep(wait)


class CallThrottle:
    """Keeps this process under Oktopost's 60 calls a minute.

    The limit is per key and this count is per process: Meltano runs discovery and
    the sync as two processes, and other tools may share the key, so a 429 can
    still come, and `retrying` waits it out.
    """

    def __init__(
        self,
        calls: int = CALLS_PER_MINUTE,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.window = window
        self.clock = clock
        self.sleep = sleep
        self.calls: deque[float] = deque(maxlen=calls)

    def wait_for_turn(self) -> None:
        """Sleep until one more call keeps the window under its limit."""
        if len(self.calls) == self.calls.maxlen:
            wait = self.calls[0] + self.window - self.clock()
            if wait > 0:
                self.sleep(wait)
        self.calls.append(self.clock())


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
    return "; ".join(parts) or "no error message"


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


_RequestFault = tuple[tuple[type[requests.RequestException], ...], bool, str]
_REQUEST_FAULTS: tuple[_RequestFault, ...] = (
    (
        (requests.exceptions.SSLError,),
        False,
        "TLS failed with {target}; check {check} and the machine's CA certificates",
    ),
    (
        (requests.Timeout,),
        True,
        "no answer from {target} in time; check the request_timeout setting and "
        "the network",
    ),
    (
        (requests.ConnectionError,),
        True,
        "could not reach {target}; check {check} and the network",
    ),
    (
        (requests.exceptions.ChunkedEncodingError,),
        True,
        "the answer from {target} was cut off",
    ),
    (
        (requests.exceptions.ContentDecodingError,),
        True,
        "the answer from {target} could not be decoded",
    ),
    (
        (requests.TooManyRedirects,),
        False,
        "{target} redirects in a loop; check {check}",
    ),
    (
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ),
        False,
        "{target} is not a usable URL; check {check}",
    ),
)
"""Request faults in the order they are told apart: SSLError is a ConnectionError
that will not pass, ConnectTimeout both a ConnectionError and a Timeout."""


def request_error(
    error: requests.RequestException,
    what: str,
    *,
    target: str,
    check: str = "the base_url setting",
) -> OktopostError:
    """Turn a request that got no usable answer into an error to raise `from None`.

    Network trouble, timeouts and cut-off or undecodable bodies are retried; a bad
    URL, a redirect loop or a TLS failure will not pass, so they name `check`.
    Never quotes `error`: its text holds the full URL, a signed link's signature.
    """
    kind = type(error).__name__
    for types, retried, text in _REQUEST_FAULTS:
        if isinstance(error, types):
            message = f"{what}: {text.format(target=target, check=check)} ({kind})"
            return (
                RetriableOktopostError(message) if retried else OktopostError(message)
            )
    return OktopostError(f"{what}: {kind} calling {target}; check {check}")


class _NoAuth(AuthBase):
    """No credentials on a signed link, not even from ~/.netrc.

    Unlike `trust_env = False`, this keeps the proxy and CA settings the
    environment gives, which the downloads need as much as the API calls.
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


def storage_session() -> requests.Session:
    """Make a session for signed links: no Authorization, the archive's own bytes.

    Object stores refuse a second auth method; `Accept-Encoding: identity` makes
    Content-Length and Range count the archive's bytes, not a gzip encoding of them.
    """
    session = requests.Session()
    session.auth = _NoAuth()
    session.headers["Accept-Encoding"] = "identity"
    return session


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


class OktopostClient:
    """Calls the Oktopost API with Basic auth, throttled, retrying what may pass.

    `sleep`, `clock` (monotonic, for the throttle), `wall_clock` (for Retry-After
    dates) and `jitter` are injectable so that tests never wait.
    """

    def __init__(
        self,
        base_url: str,
        auth: AuthBase,
        *,
        timeout: float,
        max_retries: int,
        rate_limit_wait: float,
        logger: logging.Logger,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.rate_limit_wait = rate_limit_wait
        self.logger = logger
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.jitter = jitter
        self.throttle = CallThrottle(clock=clock, sleep=sleep)
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers["Accept"] = "application/json"

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], logger: logging.Logger, **timing: Any
    ) -> OktopostClient:
        """Build the client from the tap's settings; `timing` is for tests."""
        return cls(
            config.get("base_url", US_BASE_URL),
            HTTPBasicAuth(config["account_id"], config["api_key"]),
            **retry_settings(config),
            logger=logger,
            **timing,
        )

    def get(self, path: str, what: str, params: dict[str, Any] | None = None) -> Any:
        """GET an API path and return its body, once `Result` says it succeeded."""
        return retrying(
            lambda: self._get_once(path, what, params),
            max_retries=self.max_retries,
            rate_limit_wait=self.rate_limit_wait,
            logger=self.logger,
            sleep=self.sleep,
            jitter=self.jitter,
        )

    def _get_once(self, path: str, what: str, params: dict[str, Any] | None) -> Any:
        self.throttle.wait_for_turn()
        try:
            response = self.session.get(
                f"{self.base_url}{path}", params=params, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise request_error(error, what, target=self.base_url) from None
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status >= 400:
            raise api_status_error(
                status,
                path=path,
                what=what,
                oktopost_said=oktopost_message(body),
                retry_after=retry_after_seconds(
                    response.headers.get("Retry-After"), self.wall_clock
                ),
            )
        if not isinstance(body, dict):
            snippet = response.text[:200].strip()
            message = (
                f"{what}: Oktopost answered HTTP {status} with no JSON: {snippet!r}"
            )
            raise OktopostError(message)
        if body.get("Result") is not True:
            message = (
                f"{what}: Oktopost answered Result false: {oktopost_message(body)}"
            )
            raise OktopostError(message)
        return body

    def check_credentials(self) -> dict[str, Any]:
        """Make the cheapest authenticated call."""
        user: dict[str, Any] = self.get("/me", "Checking credentials (GET /me)")["User"]
        return user

    def list_exports(self, status: str | None = None) -> Iterator[dict[str, Any]]:
        """Yield every export on every page.

        The page size is undocumented, so paging stops at `Total` or at an empty page,
        whichever comes first.
        """
        seen = 0
        page = 0
        while True:
            params: dict[str, Any] = {"_page": page}
            if status:
                params["status"] = status
            body = self.get("/bi-export", f"Listing exports (page {page})", params)
            exports = body.get("Exports") or []
            total = body.get("Total")
            yield from exports
            seen += len(exports)
            if not exports or (isinstance(total, int) and seen >= total):
                return
            page += 1

    def get_export(self, export_id: str) -> dict[str, Any]:
        """Describe one export, with a fresh link to its last run's file."""
        body = self.get(
            f"/bi-export/{quote(export_id, safe='')}", f"Export {export_id}"
        )
        export = body.get("Export")
        if not isinstance(export, dict):
            message = f"Export {export_id}: Oktopost's answer has no 'Export' object"
            raise OktopostError(message)
        return export

"""HTTP access to the Oktopost API: auth, the `Result` envelope, errors and retries."""

from __future__ import annotations

import datetime
import email.utils
import logging
import random
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import backoff
import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from backoff.types import Details
    from requests.auth import AuthBase

US_BASE_URL = "https://api.oktopost.com/v2"
EU_BASE_URL = "https://eu-api.oktopost.com/v2"
MAX_BACKOFF_SECONDS = 60
T = TypeVar("T")


class OktopostError(Exception):
    """An Oktopost answer the tap cannot use; the message says what to check."""


class RetriableOktopostError(OktopostError):
    """A fault that may pass: server error, network trouble, a cut-off download."""


class RateLimitedError(RetriableOktopostError):
    """HTTP 429: Oktopost wants a pause, of `retry_after` seconds when it says so."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(header: str | None) -> float | None:
    """Read a Retry-After header: seconds, or an HTTP date."""
    if not header:
        return None
    if header.strip().isdigit():
        return float(header)
    try:
        moment = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    now = datetime.datetime.now(datetime.timezone.utc)
    return max(0.0, (moment - now).total_seconds())


def _retry_waits(rate_limit_wait: float) -> Generator[float | None, Any, None]:
    """Exponential backoff with full jitter, capped; after a 429, Oktopost's pause.

    `backoff` sends each exception into this generator, so one wait policy serves
    rate limits and transient faults alike.
    """
    error = yield None
    attempt = 0
    while True:
        if isinstance(error, RateLimitedError):
            wait = rate_limit_wait if error.retry_after is None else error.retry_after
        else:
            ceiling = min(2.0**attempt, MAX_BACKOFF_SECONDS)
            wait = random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
            attempt += 1
        error = yield wait


def retrying(
    call: Callable[[], T],
    *,
    max_retries: int,
    rate_limit_wait: float,
    logger: logging.Logger,
) -> T:
    """Run `call`, retrying RetriableOktopostError up to `max_retries` times."""

    def log_retry(details: Details) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, RateLimitedError):
            reason = (
                "as its Retry-After header asks"
                if error.retry_after is not None
                else "(rate_limit_wait_seconds) for Oktopost's lockout of a key that "
                "went over its rate limit to pass"
            )
            logger.warning("%s: waiting %.0f s %s", error, details["wait"], reason)
            return
        logger.warning(
            "%s: retry %d of %d in %.1f s",
            error,
            details["tries"],
            max_retries,
            details["wait"],
        )

    decorated = backoff.on_exception(
        _retry_waits,  # type: ignore[arg-type]  # backoff sends it the exception
        RetriableOktopostError,
        max_tries=max_retries + 1,
        jitter=None,
        on_backoff=log_retry,
        logger=None,
        rate_limit_wait=rate_limit_wait,
    )(call)
    return decorated()


class CallThrottle:
    """Keeps calls under Oktopost's limits, so a normal sync never meets a 429."""

    def __init__(
        self,
        limits: tuple[tuple[int, float], ...] = ((60, 60.0), (120, 5.0)),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        self.calls: deque[float] = deque(maxlen=max(count for count, _ in limits))

    def wait_for_turn(self) -> None:
        """Sleep until one more call keeps every window under its limit."""
        for count, window in self.limits:
            if len(self.calls) >= count:
                wait = self.calls[-count] + window - self.clock()
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


def _explain_status(status: int, what: str, message: str) -> str:
    advice = {
        401: "check the account_id and api_key settings",
        403: "the API key's user lacks permission for this; check its role in Oktopost",
        404: "check the export id (export_ids / test_export_id settings) and access",
    }.get(status, "Oktopost rejected the request")
    return f"{what}: HTTP {status}, {advice}. Oktopost said: {message}"


class OktopostClient:
    """Calls the Oktopost API with Basic auth, retrying what may pass."""

    def __init__(
        self,
        base_url: str,
        auth: AuthBase,
        *,
        timeout: float,
        max_retries: int,
        rate_limit_wait: float,
        logger: logging.Logger,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.rate_limit_wait = rate_limit_wait
        self.logger = logger
        self.throttle = CallThrottle()
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers["Accept"] = "application/json"

    def get(self, path: str, what: str, params: dict[str, Any] | None = None) -> Any:
        """GET an API path and return its body, once `Result` says it succeeded."""
        return retrying(
            lambda: self._get_once(path, what, params),
            max_retries=self.max_retries,
            rate_limit_wait=self.rate_limit_wait,
            logger=self.logger,
        )

    def _get_once(self, path: str, what: str, params: dict[str, Any] | None) -> Any:
        self.throttle.wait_for_turn()
        try:
            response = self.session.get(
                f"{self.base_url}{path}", params=params, timeout=self.timeout
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            message = (
                f"{what}: {type(error).__name__} reaching {self.base_url}; "
                "check the base_url setting and the network"
            )
            raise RetriableOktopostError(message) from None
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status == 429:
            message = f"{what}: Oktopost's rate limit (HTTP 429)"
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise RateLimitedError(message, retry_after)
        if status >= 500:
            message = f"{what}: HTTP {status} from Oktopost"
            raise RetriableOktopostError(message)
        if status >= 400:
            raise OktopostError(_explain_status(status, what, oktopost_message(body)))
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

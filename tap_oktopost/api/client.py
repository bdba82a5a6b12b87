"""The Oktopost API client: the paged export list and an export's detail.

Each call goes through the throttle, the retry policy and the request deadline.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from tap_oktopost.api.errors import OktopostError, printable, request_error
from tap_oktopost.api.retry import (
    CallThrottle,
    api_status_error,
    call_log_path,
    oktopost_message,
    retry_after_seconds,
    retry_settings,
    retrying,
)
from tap_oktopost.api.transport import (
    US_BASE_URL,
    CredentialFreeSession,
    RequestDeadline,
    base_url_problem,
    is_loopback,
    read_answer,
    too_slow,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

MAX_PAGES = 1000
"""Pages of exports read at most: at 60 calls a minute, 17 minutes of the 20,000
calls a day Oktopost allows a key, and far more exports than an account has."""
MAX_PASSES = 4
"""Passes over the pages at most, while exports come and go as the tap lists them."""
STALLED_PAGES = 3
"""Full pages in a row with no export unseen before that end a listing: one is
normal when an export was created while paging, three are a server in a loop."""


def _past_total(
    listed: _ListingPass, exports: list[dict[str, Any]], total: object
) -> bool:
    """Say whether a page past `Total` lists nothing new: the pages' end.

    Some servers answer every page number with the same last page. Before
    `Total` is reached, such a page is a shift (or a loop, if it goes on).
    """
    reached = (
        isinstance(total, int)
        and not isinstance(total, bool)
        and len(listed.exports) >= total
    )
    return reached and all(str(each.get("Id")) in listed.exports for each in exports)


@dataclass(frozen=True)
class ExportListing:
    """Every export a listing found, each once, in the order first seen.

    `incomplete` says why the listing stopped short of the end of the pages, if it
    did: the exports seen are listed all the same.
    """

    exports: list[dict[str, Any]]
    incomplete: str | None = None


@dataclass
class _ListingPass:
    """One pass over the pages: the exports by Id, and what the pages said."""

    exports: dict[str, dict[str, Any]] = field(default_factory=dict)
    totals: set[str] = field(default_factory=set)
    repeats: bool = False
    pages: int = 0
    incomplete: str | None = None

    def add(self, exports: list[dict[str, Any]]) -> int:
        """Keep each export not seen yet in this pass; count them."""
        before = len(self.exports)
        for export in exports:
            key = str(export.get("Id"))
            if key in self.exports:
                self.repeats = True
            else:
                self.exports[key] = export
        return len(self.exports) - before

    @property
    def ids(self) -> set[str]:
        """The Ids listed in this pass."""
        return set(self.exports)

    @property
    def settled(self) -> bool:
        """Say whether the pages held still: one Total, met, and no repeat.

        A Total that changed means exports came or went while paging; a repeat,
        that the pages shifted; a count off the Total, maybe an export missed.
        """
        return not self.repeats and self.totals == {str(len(self.exports))}


class OktopostClient:
    """Calls the Oktopost API with Basic auth, throttled, retrying what may pass.

    `sleep`, `clock` (monotonic, for the throttle), `wall_clock` (for Retry-After
    dates) and `jitter` are injectable so that tests never wait. `call_log` is the
    file the throttle shares with the account's other processes. A base_url with a
    user name or password in it is refused; an `http://` one is warned of, since
    the key would travel unencrypted.
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
        call_log: Path | None = None,
    ) -> None:
        problem = base_url_problem(base_url)
        if problem is not None:
            raise OktopostError(problem)
        parts = urlsplit(base_url)
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            logger.warning(
                "The base_url setting is http://, so the API key travels "
                "unencrypted; use https://"
            )
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.rate_limit_wait = rate_limit_wait
        self.logger = logger
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.jitter = jitter
        self.clock = clock
        self.throttle = CallThrottle(call_log, clock=clock, sleep=sleep)
        self.session = CredentialFreeSession()
        self.session.auth = auth
        self.session.headers["Accept"] = "application/json"

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], logger: logging.Logger, **timing: Any
    ) -> OktopostClient:
        """Build the client from the tap's settings; `timing` is for tests."""
        base_url = config.get("base_url", US_BASE_URL)
        return cls(
            base_url,
            HTTPBasicAuth(config["account_id"], config["api_key"]),
            **retry_settings(config),
            logger=logger,
            call_log=call_log_path(str(base_url), str(config["account_id"])),
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
            now=self.wall_clock,
        )

    def _get_once(self, path: str, what: str, params: dict[str, Any] | None) -> Any:
        """One call, bounded as a whole by `timeout`, its answer by its size.

        The `RequestDeadline` ends a call whose status line or headers trickle in;
        `read_answer` checks the body's pace itself. Errors are raised outside
        `except` blocks: a log formatter that prints the exception chain must find
        no requests exception quoting a URL there.
        """
        self.throttle.wait_for_turn()
        deadline = self.clock() + self.timeout
        failure: OktopostError | None = None
        with RequestDeadline(self.timeout) as watch:
            try:
                with self.session.get(
                    f"{self.base_url}{path}",
                    params=params,
                    timeout=self.timeout,
                    stream=True,
                ) as response:
                    status = response.status_code
                    retry_after = response.headers.get("Retry-After")
                    content = read_answer(
                        response, what=what, deadline=deadline, clock=self.clock
                    )
            except requests.RequestException as error:
                failure = (
                    too_slow(what)
                    if watch.ended(error)
                    else request_error(error, what, target=self.base_url)
                )
        if failure is not None:
            raise failure
        return self._body(status, content, retry_after, path=path, what=what)

    def _body(
        self,
        status: int,
        content: bytes,
        retry_after: str | None,
        *,
        path: str,
        what: str,
    ) -> Any:
        """Give an answer's JSON body once `Result` says the call succeeded."""
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        if status >= 400:
            raise api_status_error(
                status,
                path=path,
                what=what,
                oktopost_said=oktopost_message(body),
                retry_after=retry_after_seconds(retry_after, self.wall_clock),
            )
        if not isinstance(body, dict):
            snippet = content[:200].decode("utf-8", "replace").strip()
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

    def list_exports(self) -> ExportListing:
        """List every export once, by Id, however Oktopost's paging shifts.

        The page size is undocumented and `Total` may be off, so a pass pages until
        an empty page, one shorter than the longest before, or one past `Total`
        with nothing new (see `_past_total`). Exports created or deleted while
        paging shift the pages: entries repeat, or one slips past unseen. So a
        pass that did not settle (see `_ListingPass.settled`) is followed by
        another, until one settles, or lists the same exports as the one before
        with one Total on all its pages, for MAX_PASSES passes. Paging that never
        ends (STALLED_PAGES pages in a row with nothing new, MAX_PAGES pages in
        all, or MAX_PASSES passes) stops there: the listing then holds every
        export seen and says why in `incomplete`.
        """
        passes: list[_ListingPass] = []
        pages = 0
        while True:
            listed = self._list_pass(len(passes), MAX_PAGES - pages)
            pages += listed.pages
            if (
                listed.incomplete is None
                and len(listed.totals) == 1
                and (listed.settled or (passes and passes[-1].ids == listed.ids))
            ):
                return ExportListing(list(listed.exports.values()))
            passes.append(listed)
            incomplete = listed.incomplete
            if incomplete is None and len(passes) == MAX_PASSES:
                incomplete = (
                    f"the exports listed changed on each of {MAX_PASSES} passes "
                    "over the pages, so the list may miss some"
                )
            if incomplete is not None:
                seen: dict[str, dict[str, Any]] = {}
                for each in passes:
                    for key, export in each.exports.items():
                        seen.setdefault(key, export)
                return ExportListing(list(seen.values()), incomplete)

    def _list_pass(self, number: int, pages_left: int) -> _ListingPass:
        """Page through the exports once, from page 0."""
        listed = _ListingPass()
        longest = 0
        stalled = 0
        for page in range(pages_left):
            again = f", pass {number + 1}" if number else ""
            what = f"Listing exports (page {page}{again})"
            body = self.get("/bi-export", what, {"_page": page})
            exports = body.get("Exports") or []
            if not isinstance(exports, list) or not all(
                isinstance(export, dict) for export in exports
            ):
                message = f"{what}: Oktopost's 'Exports' is not a list of exports"
                raise OktopostError(message)
            listed.pages += 1
            total = body.get("Total")
            listed.totals.add(printable(repr(total)[:40]))
            if _past_total(listed, exports, total):
                return listed
            new = listed.add(exports)
            if not exports or len(exports) < longest:
                return listed
            longest = len(exports)
            stalled = 0 if new else stalled + 1
            if stalled == STALLED_PAGES:
                listed.incomplete = (
                    f"pages {page - STALLED_PAGES + 1} to {page} listed no export "
                    "unseen before and the pages do not end: Oktopost's paging "
                    "goes round in circles"
                )
                return listed
        listed.incomplete = (
            f"no end after {MAX_PAGES} pages ({len(listed.exports)} exports this "
            f"pass, Total {', '.join(sorted(listed.totals))}); stopped before the "
            "key's daily calls are spent"
        )
        return listed

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

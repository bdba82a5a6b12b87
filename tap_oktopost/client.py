"""HTTP access to the Oktopost API: auth, the `Result` envelope, errors and retries."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import backoff
import requests

if TYPE_CHECKING:
    from collections.abc import Iterator

    from backoff.types import Details
    from requests.auth import AuthBase

US_BASE_URL = "https://api.oktopost.com/v2"
EU_BASE_URL = "https://eu-api.oktopost.com/v2"
MAX_BACKOFF_SECONDS = 60


class OktopostError(Exception):
    """An Oktopost answer the tap cannot use; the message says what to check."""


class RetriableOktopostError(OktopostError):
    """A fault that may pass: rate limit, server error, network trouble."""


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
        logger: logging.Logger,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.logger = logger
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers["Accept"] = "application/json"

    def get(self, path: str, what: str, params: dict[str, Any] | None = None) -> Any:
        """GET an API path and return its body, once `Result` says it succeeded."""
        send = backoff.on_exception(
            backoff.expo,
            RetriableOktopostError,
            max_tries=self.max_retries + 1,
            max_value=MAX_BACKOFF_SECONDS,
            jitter=backoff.full_jitter,
            on_backoff=self._log_retry,
            logger=None,
        )(self._get_once)
        return send(path, what, params)

    def _log_retry(self, details: Details) -> None:
        self.logger.warning(
            "Retrying in %.1f s (attempt %d of %d): %s",
            details["wait"],
            details["tries"] + 1,
            self.max_retries + 1,
            sys.exc_info()[1],
        )

    def _get_once(self, path: str, what: str, params: dict[str, Any] | None) -> Any:
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
        if status == 429 or status >= 500:
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

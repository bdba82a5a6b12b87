"""What goes wrong, said safely: the tap's errors, printable names, no secrets.

Every module raises `OktopostError` (or a retriable kind) with a message naming what
to check; `request_error` turns a requests fault into one without quoting the URL,
and `redact` shows a signed link without its query string, where the signature is.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import requests


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


def printable(text: str) -> str:
    """Escape control characters and newlines, so a name keeps a log line one line."""
    return "".join(
        character if character.isprintable() else repr(character)[1:-1]
        for character in text
    )


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


def redact(link: str) -> str:
    """Show a link without its query string, where the signature lives."""
    try:
        parts = urlsplit(link)
    except ValueError:
        return "a link that is not a URL"
    host = parts.netloc.rpartition("@")[2]  # never a user name or password
    return printable(f"{parts.scheme}://{host}{parts.path}")


class _WithoutQueryStrings(logging.Filter):
    """Cut query strings out of urllib3's debug lines, which quote signed links."""

    _QUERY = re.compile(r"\?[^\s\"']*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg = self._QUERY.sub("?<redacted>", message)
            record.args = ()
        return True


_LINK_QUERIES = _WithoutQueryStrings()


def hide_link_queries() -> None:
    """Keep signed links' query strings out of urllib3's debug lines, from now on.

    Called when a session is made (each request goes through one), not at import:
    the filter is the process's, and adding it twice is adding it once.
    """
    logging.getLogger("urllib3.connectionpool").addFilter(_LINK_QUERIES)

"""What an export detail means for loading: its run, its file, and what is safe to emit.

Oktopost's answers carry credentials (SFTP passwords, signed links); everything that
leaves the tap as a record goes through `without_secrets` first.
"""

from __future__ import annotations

import datetime
import math
import posixpath
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

from requests import RequestException
from requests.models import PreparedRequest

from tap_oktopost.api.errors import OktopostError, printable

_SECRET_NAME = re.compile(r"password|secret|token|key", re.IGNORECASE)
_FILE_NAME_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EPOCH_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_ZERO_DATE = re.compile(r"0000-00-00(?:[T ]00:00(?::00(?:\.0+)?)?)?")
"""MySQL's zero date, which PHP APIs send for a date never set."""
_ISO_8601 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ](?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2})?)(?:[.,](?P<fraction>[0-9]+))?)?"
    r"\s*(?P<zone>Z|UTC|GMT|[+-][0-9]{2}(?::?[0-9]{2})?)?",
    re.IGNORECASE,
)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
EPOCH_UNITS = ((10**11, 1), (10**14, 10**3), (10**17, 10**6))
"""Epoch numbers told apart by size: under 1e11 are seconds (1e11 s is the year
5138), then milliseconds, then microseconds; larger ones are no run date."""
LINK_SCHEMES = frozenset({"http", "https"})
SHOWN_CHARACTERS = 40
"""How much of an unreadable value an error message quotes."""


class ExportDetailError(OktopostError):
    """A field of an export's detail the tap cannot use: that export fails alone."""


class RunDateError(ExportDetailError, ValueError):
    """An export's LastRunDate is in no format the tap knows."""


def parse_run_date(value: object, export_id: str) -> str | None:
    """Normalise LastRunDate to RFC 3339 UTC; None when the export never ran.

    The API's documentation, its official client and its other fields disagree on the
    format, so epoch seconds, milliseconds or microseconds (number or text), ISO
    8601, `YYYY-MM-DD HH:MM:SS` and bare dates are all accepted, naive values being
    UTC. Null, empty, 0, the zero date and the epoch itself mean "never".
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        moment = _run_moment(value)
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise RunDateError(_run_date_message(value, export_id))
    return None if moment == _EPOCH else moment.isoformat()


def _run_moment(value: object) -> datetime.datetime | None:
    """Read a run date as a UTC time; None when it is no date of any known form."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _epoch_moment(Decimal(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _EPOCH_NUMBER.fullmatch(text):
        return _epoch_moment(Decimal(text))
    if _ZERO_DATE.fullmatch(text):
        return _EPOCH
    moment = datetime.datetime.fromisoformat(_python_310_iso(text))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    moment = moment.astimezone(datetime.timezone.utc)
    return moment if moment >= _EPOCH else None


def _epoch_moment(number: Decimal) -> datetime.datetime | None:
    """Read an epoch number in its unit, to the exact microsecond."""
    if not number.is_finite() or number < 0:
        return None
    for limit, per_second in EPOCH_UNITS:
        if number < limit:
            microseconds = round(number * 10**6 / per_second)
            return _EPOCH + datetime.timedelta(microseconds=microseconds)
    return None


def _python_310_iso(text: str) -> str:
    """Rewrite ISO 8601 in the subset Python 3.10's `fromisoformat` reads.

    3.10 refuses `Z`, `+0200` and fractions of other than 3 or 6 digits, which 3.11
    reads, and neither reads a `UTC` or `GMT` suffix; text of another shape is left
    for `fromisoformat` to judge.
    """
    found = _ISO_8601.fullmatch(text)
    if found is None:
        return text
    rewritten = found["date"]
    if found["time"]:
        rewritten += f"T{found['time']}"
        if found["fraction"]:
            rewritten += "." + found["fraction"][:6].ljust(6, "0")
    zone = (found["zone"] or "").upper()
    if zone in {"Z", "UTC", "GMT"}:
        zone = "+00:00"
    elif zone:
        digits = zone[1:].replace(":", "")
        zone = f"{zone[0]}{digits[:2]}:{digits[2:] or '00'}"
    if zone and not found["time"]:
        rewritten += "T00:00"
    return rewritten + zone


def _run_date_message(value: object, export_id: str) -> str:
    return (
        f"Export {export_id}: LastRunDate {shown(value)} is not epoch seconds or "
        "milliseconds, ISO 8601, 'YYYY-MM-DD HH:MM:SS' or a date, since 1970"
    )


def shown(value: object) -> str:
    """Quote a detail value in a message: escaped and cut short."""
    text = repr(value)
    if len(text) > SHOWN_CHARACTERS:
        text = text[:SHOWN_CHARACTERS] + "..."
    return printable(text)


def json_type(value: object) -> str:
    """Name a value's JSON type, for messages about a field of the wrong one."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else "array"


def run_link(value: object, export_id: str) -> str | None:
    """Check LastRunFile: None when there is no file, else a link requests can get.

    The error names what is wrong, never the link: its query string is a
    credential.
    """
    if value is None or value == "":
        return None
    problem: str | None
    if not isinstance(value, str):
        problem = f"is a JSON {json_type(value)}, not a link"
    else:
        problem = _link_problem(value)
    if problem is not None:
        message = f"Export {export_id}: LastRunFile {problem}"
        raise ExportDetailError(message)
    return str(value)


def _link_problem(link: str) -> str | None:
    """Say why a link cannot be fetched over HTTP, or None when it can."""
    if not link.strip():
        return "is blank"
    if any(character.isspace() or not character.isprintable() for character in link):
        return "holds spaces or control characters"
    try:
        parts = urlsplit(link)
        parts.port  # noqa: B018  (reading it checks it)
    except ValueError:
        return "has an unreadable host or port"
    if not parts.scheme:
        return "is not an absolute link (no scheme)"
    if parts.scheme.lower() not in LINK_SCHEMES:
        return f"has the scheme {shown(parts.scheme)}, not http or https"
    return _host_problem(link, parts.hostname)


def _host_problem(link: str, host: str | None) -> str | None:
    """Say why requests could not send the link to its host, or None."""
    if not host:
        return "names no host"
    try:
        if ":" not in host:  # an IPv6 address has no labels to encode
            host.encode("idna")
        PreparedRequest().prepare_url(link, None)
    except (UnicodeError, RequestException, ValueError):
        return "has an unreadable host"
    return None


def link_file_name(link: str) -> str:
    """Keep only the file name of a signed link: the rest of it is a credential."""
    return unquote(posixpath.basename(urlsplit(link).path))


SAFE_DESTINATION_FIELDS: dict[str, type] = {
    "Email": str,
    "Emails": list,
    "FirstName": str,
    "LastName": str,
    "Name": str,
    "Username": str,
    "UserName": str,
    "Host": str,
    "Hostname": str,
    "Port": int,
    "Protocol": str,
    "BucketName": str,
    "Bucket": str,
    "Region": str,
    "Path": str,
    "Folder": str,
    "Directory": str,
    "Prefix": str,
    "AccountName": str,
    "Container": str,
}
"""The `Destination` fields a record keeps, with the type the schema declares (a list
is of texts): names,
addresses and places, never a credential. Anything else (Passwd, ConnectionString,
SasUrl, a nested object) is dropped, as a deny list cannot know every name a
password hides under."""


def safe_destination(destination: Any) -> dict[str, Any]:
    """Keep the allowed fields of a destination, each in its declared type.

    A value of another JSON type becomes the declared one where it reads plainly
    as it (a port `"22"`, a single address for `Emails`), else null: a target that
    builds columns from the schema keeps every field, and none holds a surprise.
    """
    if not isinstance(destination, dict):
        return {}
    return {
        name: _as_declared(value, SAFE_DESTINATION_FIELDS[name])
        for name, value in destination.items()
        if name in SAFE_DESTINATION_FIELDS
    }


def _as_declared(value: Any, kind: type) -> Any:
    if kind is int:
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind is list:
        items = value if isinstance(value, list) else [value]
        texts = [_as_text(item) for item in items]
        return [text for text in texts if text is not None] or None
    return _as_text(value)


def without_secrets(value: Any) -> Any:
    """Make an export safe to emit: `Destination` by allow list, then by name.

    Besides the destination, a field whose name says it holds a credential is
    dropped at any depth.
    """
    if isinstance(value, dict):
        return {
            name: safe_destination(item)
            if name == "Destination"
            else without_secrets(item)
            for name, item in value.items()
            if not _SECRET_NAME.search(name)
        }
    if isinstance(value, list):
        return [without_secrets(item) for item in value]
    return value


TEXT_FIELDS = ("DestinationType", "Type", "Frequency", "TimeRange", "Status")
"""Detail fields the metadata streams declare as text."""


def _as_text(value: object) -> str | None:
    """Give a text field as the schema declares it: a number as text, else null."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value) if math.isfinite(value) else None
    return None


def metadata_record(export: dict[str, Any]) -> dict[str, Any]:
    """Make an export's list item or detail a record: no secret, declared types.

    Text fields of another JSON type are null (a number becomes its text), so no
    record holds a shape its schema does not declare.
    """
    record: dict[str, Any] = without_secrets(export)
    for name in TEXT_FIELDS:
        if name in record:
            record[name] = _as_text(record[name])
    return record


def _file_name_date(file_name: str | None) -> str | None:
    """Oktopost names an archive after its run date: the fallback for a missing date."""
    found = _FILE_NAME_DATE.match(file_name or "")
    if found is None:
        return None
    try:
        datetime.date.fromisoformat(found.group(0))
    except ValueError:
        return None
    return found.group(0)


@dataclass(frozen=True)
class ExportRun:
    """An export's last run as the detail endpoint describes it."""

    export_id: str
    export_type: str
    run_at: str | None
    link: str | None = field(repr=False)
    record: dict[str, Any] = field(repr=False)

    @classmethod
    def from_detail(cls, export_id: str, detail: dict[str, Any]) -> ExportRun:
        """Read the detail; the record keeps the link's file name, not the link.

        A field the tap cannot use for loading raises `ExportDetailError` for this
        export alone; text fields of another JSON type are null in the record.
        """
        link = run_link(detail.get("LastRunFile"), export_id)
        file_name = link_file_name(link) if link else None
        run_at = parse_run_date(detail.get("LastRunDate"), export_id)
        if run_at is None:
            run_at = parse_run_date(_file_name_date(file_name), export_id)
        if link and run_at is None:
            message = (
                f"Export {export_id}: LastRunFile is set but LastRunDate is empty and "
                "the file name holds no date: the run cannot be told from others"
            )
            raise ExportDetailError(message)
        record = metadata_record(detail)
        record["Id"] = export_id  # the Id asked for: the answer's could be anything
        record["LastRunDate"] = run_at
        record["LastRunFile"] = file_name
        return cls(
            export_id=export_id,
            export_type=record.get("Type") or "",
            run_at=run_at if link else None,
            link=link,
            record=record,
        )

    @property
    def file_name(self) -> str | None:
        """The run file's name (never the link): it tells a re-run from its run."""
        file_name: str | None = self.record.get("LastRunFile")
        return file_name

"""What an export detail means for loading: its run, its file, and what is safe to emit.

Oktopost's answers carry credentials (SFTP passwords, signed links); everything that
leaves the tap as a record goes through `without_secrets` first.
"""

from __future__ import annotations

import datetime
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from tap_oktopost.client import OktopostError

_SECRET_NAME = re.compile(r"password|secret|token|key", re.IGNORECASE)
_FILE_NAME_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EPOCH_SECONDS = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_ISO_8601 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ](?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2})?)(?:[.,](?P<fraction>[0-9]+))?)?"
    r"\s*(?P<zone>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?",
    re.IGNORECASE,
)


class RunDateError(OktopostError, ValueError):
    """An export's LastRunDate is in no format the tap knows."""


def parse_run_date(value: object, export_id: str) -> str | None:
    """Normalise LastRunDate to RFC 3339 UTC; None when the export never ran.

    The API's documentation, its official client and its other fields disagree on the
    format, so epoch seconds, ISO 8601, `YYYY-MM-DD HH:MM:SS` and bare dates are all
    accepted, naive values being UTC.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RunDateError(_run_date_message(value, export_id))
    if isinstance(value, int | float) or (
        isinstance(value, str) and _EPOCH_SECONDS.fullmatch(value.strip())
    ):
        moment = datetime.datetime.fromtimestamp(float(value), tz=datetime.timezone.utc)
    elif isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(_python_310_iso(value.strip()))
        except ValueError:
            raise RunDateError(_run_date_message(value, export_id)) from None
    else:
        raise RunDateError(_run_date_message(value, export_id))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).isoformat()


def _python_310_iso(text: str) -> str:
    """Rewrite ISO 8601 in the subset Python 3.10's `fromisoformat` reads.

    3.10 refuses `Z`, `+0200` and fractions of other than 3 or 6 digits, which 3.11
    reads; text of another shape is left for `fromisoformat` to judge.
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
    if zone == "Z":
        zone = "+00:00"
    elif zone:
        digits = zone[1:].replace(":", "")
        zone = f"{zone[0]}{digits[:2]}:{digits[2:] or '00'}"
    if zone and not found["time"]:
        rewritten += "T00:00"
    return rewritten + zone


def _run_date_message(value: object, export_id: str) -> str:
    return (
        f"Export {export_id}: LastRunDate {value!r} is not epoch seconds, ISO 8601, "
        "'YYYY-MM-DD HH:MM:SS' or a date"
    )


def link_file_name(link: str) -> str:
    """Keep only the file name of a signed link: the rest of it is a credential."""
    return unquote(posixpath.basename(urlsplit(link).path))


SAFE_DESTINATION_FIELDS = frozenset(
    {
        "Email",
        "Emails",
        "FirstName",
        "LastName",
        "Name",
        "Username",
        "UserName",
        "Host",
        "Hostname",
        "Port",
        "Protocol",
        "BucketName",
        "Bucket",
        "Region",
        "Path",
        "Folder",
        "Directory",
        "Prefix",
        "AccountName",
        "Container",
    }
)
"""The `Destination` fields a record keeps: names, addresses and places, never a
credential. Anything else (Passwd, ConnectionString, SasUrl, a nested object) is
dropped, as a deny list cannot know every name a password hides under."""


def safe_destination(destination: Any) -> dict[str, Any]:
    """Keep the allowed fields of a destination that hold a plain value."""
    if not isinstance(destination, dict):
        return {}
    return {
        name: value
        for name, value in destination.items()
        if name in SAFE_DESTINATION_FIELDS and _is_plain(value)
    }


def _is_plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(item, str) for item in value)
    return value is None or isinstance(value, str | int | float | bool)


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


def _file_name_date(file_name: str | None) -> str | None:
    """Oktopost names an archive after its run date: the fallback for a missing date."""
    found = _FILE_NAME_DATE.match(file_name or "")
    return found.group(0) if found else None


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
        """Read the detail; the record keeps the link's file name, not the link."""
        link = detail.get("LastRunFile") or None
        file_name = link_file_name(link) if link else None
        record = without_secrets(detail)
        record["Id"] = export_id  # the Id asked for: the answer's could be anything
        record["LastRunDate"] = parse_run_date(
            detail.get("LastRunDate") or _file_name_date(file_name), export_id
        )
        record["LastRunFile"] = file_name
        return cls(
            export_id=record["Id"],
            export_type=str(detail.get("Type") or ""),
            run_at=record["LastRunDate"] if link else None,
            link=link,
            record=record,
        )

"""The settings a sync uses, read once from the config into one typed value.

The config's JSON schema (in `tap`) has already refused a wrong type or range; this
reads the checked values once, with their defaults, so that no other module looks
a setting up by name. JSON numbers may come as Decimal (the SDK's JSON reader),
which `time.sleep` and socket timeouts refuse: they are made plain numbers here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tap_oktopost.api.retry import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMIT_WAIT_SECONDS,
    retry_settings,
)
from tap_oktopost.api.transport import DEFAULT_TIMEOUT_SECONDS, US_BASE_URL
from tap_oktopost.archives.archive import DEFAULT_MAX_UNCOMPRESSED_BYTES
from tap_oktopost.archives.cache import DEFAULT_CACHE_BYTES
from tap_oktopost.archives.download import (
    DEFAULT_MAX_ARCHIVE_BYTES,
    DEFAULT_MAX_DISK_BYTES,
)
from tap_oktopost.tables.column_typing import (
    DEFAULT_WHOLE_FILE_BYTES,
    KEEP,
    WHOLE_FILE_SETTING,
)
from tap_oktopost.tables.csv_data import (
    DEFAULT_KEY,
    DEFAULT_MAX_FIELD_CHARACTERS,
    FIELD_LIMIT_SETTING,
)

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class Settings:
    """What the pipeline needs of the config, typed; the API key never printed."""

    account_id: str
    api_key: str = field(repr=False)
    base_url: str = US_BASE_URL
    configured_exports: tuple[str, ...] = ()
    """export_ids then test_export_id, each once: empty loads every active export."""
    primary_keys: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    column_types: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    column_typing: str = KEEP
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    max_retries: int = DEFAULT_MAX_RETRIES
    rate_limit_wait: float = DEFAULT_RATE_LIMIT_WAIT_SECONDS
    max_field_characters: int = DEFAULT_MAX_FIELD_CHARACTERS
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES
    max_archive_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES
    max_disk_bytes: int = DEFAULT_MAX_DISK_BYTES
    whole_file_discovery_bytes: int = DEFAULT_WHOLE_FILE_BYTES
    archive_cache_dir: str | None = None
    """None: the user's cache folder (`default_cache_dir`)."""
    archive_cache_bytes: int = DEFAULT_CACHE_BYTES
    batch_config: Mapping[str, Any] | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Read the (schema-checked) config once, with the defaults it leaves out."""
        retry = retry_settings(config)
        configured = [
            *(config.get("export_ids") or []),
            *filter(None, [config.get("test_export_id")]),
        ]
        return cls(
            account_id=str(config["account_id"]),
            api_key=str(config["api_key"]),
            base_url=str(config.get("base_url", US_BASE_URL)),
            configured_exports=tuple(dict.fromkeys(str(e) for e in configured)),
            primary_keys=MappingProxyType(
                {
                    str(table): tuple(str(key) for key in keys)
                    for table, keys in (config.get("primary_keys") or {}).items()
                }
            ),
            column_types=MappingProxyType(
                {
                    str(table): MappingProxyType(dict(columns))
                    for table, columns in (config.get("column_types") or {}).items()
                }
            ),
            column_typing=str(config.get("column_typing", KEEP)),
            timeout=retry["timeout"],
            max_retries=retry["max_retries"],
            rate_limit_wait=retry["rate_limit_wait"],
            max_field_characters=int(
                config.get(FIELD_LIMIT_SETTING, DEFAULT_MAX_FIELD_CHARACTERS)
            ),
            max_uncompressed_bytes=int(
                config.get("max_uncompressed_bytes", DEFAULT_MAX_UNCOMPRESSED_BYTES)
            ),
            max_archive_bytes=int(
                config.get("max_archive_bytes", DEFAULT_MAX_ARCHIVE_BYTES)
            ),
            max_disk_bytes=int(config.get("max_disk_bytes", DEFAULT_MAX_DISK_BYTES)),
            whole_file_discovery_bytes=int(
                config.get(WHOLE_FILE_SETTING, DEFAULT_WHOLE_FILE_BYTES)
            ),
            archive_cache_dir=config.get("archive_cache_dir") or None,
            archive_cache_bytes=int(
                config.get("archive_cache_bytes", DEFAULT_CACHE_BYTES)
            ),
            batch_config=config.get("batch_config") or None,
        )

    def pinned_types(self, table: str) -> dict[str, str]:
        """Give the column types the column_types setting fixes for a table."""
        return dict(self.column_types.get(table, {}))

    def primary_keys_of(self, table: str) -> list[str]:
        """Give a CSV table's key: the primary_keys setting's, else the default."""
        return list(self.primary_keys.get(table) or DEFAULT_KEY)

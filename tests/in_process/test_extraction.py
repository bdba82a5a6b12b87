"""One owner for a sync: settings read once, streams handed the owner, lazy plan.

The streams never reach the tap: they get an `Extraction` at construction, built
from typed `Settings`. What it makes (listing, plan, downloads) it makes at first
need, so that `meltano config test`, which stops at the export list's first
record, downloads nothing.
"""

from __future__ import annotations

import ast
import dataclasses
import random
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from tap_oktopost.api.transport import US_BASE_URL
from tap_oktopost.streams import OktopostStream
from tap_oktopost.sync.settings import Settings
from tap_oktopost.tables.csv_data import DEFAULT_KEY
from tap_oktopost.tap import TapOktopost
from tests.conftest import (
    ROOT,
    config_for,
    csv_text,
    discover_in_process,
    export_with,
)
from tests.stand_ins.oktopost_stand_in import OktopostStandIn

STREAMS_MODULE = ROOT / "tap_oktopost" / "streams.py"

SETTING_OF_FIELD = {
    "base_url": "base_url",
    "column_typing": "column_typing",
    "timeout": "request_timeout",
    "max_retries": "max_retries",
    "rate_limit_wait": "rate_limit_wait_seconds",
    "max_field_characters": "max_csv_field_characters",
    "max_uncompressed_bytes": "max_uncompressed_bytes",
    "max_archive_bytes": "max_archive_bytes",
    "max_disk_bytes": "max_disk_bytes",
    "whole_file_discovery_bytes": "whole_file_discovery_bytes",
    "archive_cache_bytes": "archive_cache_bytes",
}
"""Each typed field with a default, and the setting it reads."""
NUMBERS = {"timeout": float, "rate_limit_wait": float}
"""Fields the config may give as Decimal (the SDK's JSON reader), made float."""


def seeded(seed: int) -> random.Random:
    """Reproducible test data (not secrets)."""
    return random.Random(seed)  # noqa: S311 - test data, not secrets


def schema_default(setting: str) -> Any:
    """The default the settings schema advertises (`--about`, Meltano Hub)."""
    return TapOktopost.config_jsonschema["properties"][setting]["default"]


def random_config(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """A config setting a random subset of settings, and the values each field gets."""
    config: dict[str, Any] = {"account_id": "acct", "api_key": "k3y-" + "x" * 20}
    expected: dict[str, Any] = {}
    for field_name, setting in SETTING_OF_FIELD.items():
        if rng.random() < 0.5:
            default = schema_default(setting)
            expected[field_name] = float(default) if field_name in NUMBERS else default
            continue
        if field_name == "base_url":
            value: Any = f"http://127.0.0.1:{rng.randint(1024, 65535)}/v2"
        elif field_name == "column_typing":
            value = rng.choice(["keep", "widen", "text"])
        elif field_name in NUMBERS:
            value = Decimal(rng.randint(1, 9000)) / 10
        else:
            value = rng.randint(1, 2**40)
        config[setting] = value
        expected[field_name] = float(value) if field_name in NUMBERS else value
    return config, expected


@pytest.mark.parametrize("seed", range(12))
def test_settings_are_the_config_read_once_with_the_schemas_defaults(
    seed: int,
) -> None:
    config, expected = random_config(seeded(seed))

    settings = Settings.from_config(config)

    for field_name, value in expected.items():
        got = getattr(settings, field_name)
        assert got == value, field_name
        assert type(got) is type(value), field_name  # no Decimal reaches a socket
    assert settings.account_id == "acct"
    assert settings.api_key == config["api_key"]
    assert config["api_key"] not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_retries = 99  # type: ignore[misc]


def test_the_typed_defaults_are_the_schemas() -> None:
    built = Settings(account_id="acct", api_key="k")

    read = Settings.from_config({"account_id": "acct", "api_key": "k"})

    assert built == read
    assert read.base_url == US_BASE_URL
    for field_name, setting in SETTING_OF_FIELD.items():
        assert getattr(read, field_name) == schema_default(setting), field_name


@pytest.mark.parametrize("seed", range(8))
def test_configured_exports_come_once_each_in_the_order_given(seed: int) -> None:
    rng = seeded(seed)
    pool = [f"032{n:012d}" for n in range(6)]
    listed = [rng.choice(pool) for _ in range(rng.randint(0, 8))]
    single = rng.choice([None, *pool])
    config: dict[str, Any] = {"account_id": "a", "api_key": "k", "export_ids": listed}
    if single is not None:
        config["test_export_id"] = single

    settings = Settings.from_config(config)

    wanted = list(dict.fromkeys([*listed, *([single] if single else [])]))
    assert list(settings.configured_exports) == wanted


@pytest.mark.parametrize("seed", range(6))
def test_a_tables_key_and_pinned_types_come_from_the_settings(seed: int) -> None:
    rng = seeded(seed)
    tables = [f"table_{n}" for n in range(rng.randint(1, 5))]
    keyed = {t: [f"c{rng.randint(0, 9)}"] for t in tables if rng.random() < 0.5}
    pinned = {t: {"c1": "string"} for t in tables if rng.random() < 0.5}
    settings = Settings.from_config(
        {
            "account_id": "a",
            "api_key": "k",
            "primary_keys": keyed,
            "column_types": pinned,
        }
    )

    for table in tables:
        assert settings.primary_keys_of(table) == keyed.get(table, list(DEFAULT_KEY))
        assert settings.pinned_types(table) == pinned.get(table, {})
    # A caller's change to what it was given never reaches the settings.
    settings.pinned_types(tables[0])["c9"] = "integer"
    assert "c9" not in settings.pinned_types(tables[0])


def test_the_streams_module_imports_no_tap() -> None:
    tree = ast.parse(STREAMS_MODULE.read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}

    assert "tap_oktopost.tap" not in imported
    assert "TapOktopost" not in names
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tap_oktopost.streams; "
            "print('tap_oktopost.tap' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert loaded.stdout.strip() == "False"


def add_random_exports(stand_in: OktopostStandIn, rng: random.Random) -> list[str]:
    """Add 1-4 exports, each one run of a CSV file with a few random rows."""
    ids = []
    for number in range(rng.randint(1, 4)):
        export_id = f"032{rng.randint(0, 999):03d}{number:09d}"
        rows = [["Id", "Clicks"]] + [
            [str(row), str(rng.randint(0, 999))] for row in range(rng.randint(1, 30))
        ]
        stand_in.add_export(export_with(export_id, {"figures.csv": csv_text(rows)}))
        ids.append(export_id)
    return ids


@pytest.mark.parametrize("seed", range(4))
def test_the_owner_plans_at_its_first_need_and_the_export_list_needs_none(
    stand_in: OktopostStandIn, seed: int
) -> None:
    ids = add_random_exports(stand_in, seeded(seed))
    config = config_for(stand_in, archive_cache_bytes=0)
    catalog = discover_in_process(config)
    stand_in.reset_log()

    tap = TapOktopost(config=config, catalog=catalog)
    owner = tap.extraction
    first = next(iter(tap.streams["export_list_metadata"].get_records(None)))

    owners = [
        stream.extraction
        for stream in tap.streams.values()
        if isinstance(stream, OktopostStream)
    ]
    assert len(owners) == len(tap.streams) >= 3
    assert all(each is owner for each in owners)
    assert isinstance(first, dict)
    assert first["Id"] in ids
    assert stand_in.downloads() == []
    assert {call.path.split("?")[0] for call in stand_in.api_calls()} == {
        "/v2/bi-export"
    }

    plan = owner.plan

    assert sorted(plan.loads) == sorted(ids)
    assert len(stand_in.downloads()) == len(ids)
    calls, downloads = len(stand_in.api_calls()), len(stand_in.downloads())
    assert owner.plan is plan
    assert (len(stand_in.api_calls()), len(stand_in.downloads())) == (
        calls,
        downloads,
    )


@pytest.mark.parametrize("seed", range(4))
def test_the_clients_export_run_gives_the_run_and_a_fresh_link(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rng = seeded(seed)
    dates = {}
    for number in range(rng.randint(1, 4)):
        export_id = f"032{seed:03d}{number:09d}"
        day, hour = rng.randint(1, 28), rng.randint(0, 9)
        dates[export_id] = f"2026-10-{day:02d}T0{hour}:00:00+00:00"
        stand_in.add_export(
            export_with(
                export_id,
                {"figures.csv": csv_text([["Id"], ["1"]])},
                run_date=f"2026-10-{day:02d} 0{hour}:00:00",
                archive_name=f"2026-10-{day:02d}-Posts-Report.zip",
            )
        )
    client = TapOktopost(
        config=config_for(stand_in), catalog={"streams": []}
    ).extraction.client

    for export_id, run_at in dates.items():
        stand_in.reset_log()
        run = client.export_run(export_id)

        assert (run.export_id, run.run_at) == (export_id, run_at)
        assert run.file_name == f"{run_at[:10]}-Posts-Report.zip"
        assert run.link is not None
        assert f"/storage/{export_id}" in run.link
        assert [call.path for call in stand_in.api_calls()] == [
            f"/v2/bi-export/{export_id}"
        ]

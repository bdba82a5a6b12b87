"""The plugin definitions users install from: they must say what the tap says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.plugin_definition import about, definition

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return definition(about())


def meltano_extractor() -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (extractor,) = project["plugins"]["extractors"]
    return dict(extractor)


def test_hub_definition_is_up_to_date(expected: dict[str, Any]) -> None:
    written = yaml.safe_load((ROOT / "hub" / "tap-oktopost.yml").read_text())
    assert written == expected, "run: python scripts/plugin_definition.py"


def test_meltano_yml_matches_the_tap(expected: dict[str, Any]) -> None:
    extractor = meltano_extractor()
    assert extractor["capabilities"] == expected["capabilities"]
    assert (
        extractor["settings_group_validation"] == expected["settings_group_validation"]
    )
    assert extractor["settings"] == expected["settings"]
    assert extractor["use_cached_catalog"] is False
    assert extractor["pip_url"] == "-e ."


def test_the_api_key_is_the_only_secret(expected: dict[str, Any]) -> None:
    secrets = [s["name"] for s in expected["settings"] if s.get("sensitive")]
    assert secrets == ["api_key"]


def test_readme_settings_table_is_the_about_output() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tap_oktopost", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    readme = (ROOT / "README.md").read_text()
    missing = [row for row in rows if row not in readme]
    assert missing == []

"""The plugin definitions users install from: they must say what the tap says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.plugin_definition import UNPUBLISHED_PIP_URL, about, definition, repository

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    return about()


@pytest.fixture(scope="module")
def expected(info: dict[str, Any]) -> dict[str, Any]:
    return definition(info, repository())


def meltano_extractor() -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (extractor,) = project["plugins"]["extractors"]
    return dict(extractor)


def meltano_loader(name: str) -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (loader,) = [
        entry for entry in project["plugins"]["loaders"] if entry["name"] == name
    ]
    return dict(loader)


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


def test_the_readme_target_jsonl_definition_is_the_one_the_tests_load_into() -> None:
    written = yaml.safe_load((ROOT / "hub" / "target-jsonl.yml").read_text())
    assert written == meltano_loader("target-jsonl")
    assert written["pip_url"] == "target-jsonl==0.1.4"  # pinned: no Hub lookup


def test_unpublished_the_definition_names_no_repository(info: dict[str, Any]) -> None:
    unpublished = definition(info, None)
    assert not {"variant", "repo", "docs"} & set(unpublished)
    assert unpublished["pip_url"] == UNPUBLISHED_PIP_URL
    assert "<OWNER>" in UNPUBLISHED_PIP_URL


@pytest.mark.parametrize(
    ("repo", "owner"),
    [
        ("https://github.com/acme/tap-oktopost", "acme"),
        ("https://github.com/Data-Team/tap-oktopost", "data-team"),
        ("https://gitlab.com/group7/tap-oktopost", "group7"),
        ("https://github.com/x_y.z/oktopost-tap", "x_y.z"),
    ],
)
def test_published_the_definition_names_the_repository_and_its_owner(
    info: dict[str, Any], repo: str, owner: str
) -> None:
    published = definition(info, repo)
    assert published["variant"] == owner
    assert published["repo"] == repo
    assert published["docs"] == f"{repo}#readme"
    assert published["pip_url"] == f"git+{repo}.git"
    assert published["settings"] == definition(info, None)["settings"]


def test_the_cached_catalog_extra_is_left_to_the_install_steps(
    expected: dict[str, Any],
) -> None:
    # `meltano add --from-ref` drops a definition's extras (Meltano 4.4.1,
    # cli/utils.py: `plugin_definition.extras.clear()`), so the README's install
    # steps set `_use_cached_catalog`; tests/end_to_end/test_install.py runs them.
    assert "use_cached_catalog" not in expected
    readme = (ROOT / "README.md").read_text()
    assert "meltano config set tap-oktopost _use_cached_catalog false" in readme

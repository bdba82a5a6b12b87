"""Installing the tap as a Meltano user does, outside this repository.

A fresh Meltano project in a temporary folder adds the tap with the README's
commands (its `pip_url` pointing at this checkout), so Meltano builds the tap's
own virtual environment with uv, as it would from the git URL; the project then
loads the stand-in's exports into JSONL. The same project shows that every kind
of setting reaches the tap each way Meltano allows. Packaging checks build the
sdist and wheel a maintainer would publish.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
import yaml

from tap_oktopost.tap import TapOktopost
from tests.conftest import building_from_checkout, meltano_in
from tests.oktopost_stand_in import OktopostStandIn, demo_exports
from tests.test_targets import DEMO_COUNTS, POSTS_EXPORT

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CHECKOUT = "/path/to/tap-oktopost"
"""How the README writes this checkout's path in its commands."""
INSTALL_COMMANDS = [
    "meltano init oktopost-elt",
    f"sed 's|^pip_url: .*|pip_url: {CHECKOUT}|' {CHECKOUT}/hub/tap-oktopost.yml"
    " > tap-oktopost.yml",
    "meltano add tap-oktopost --from-ref tap-oktopost.yml",
]
"""The README's install lines for a local checkout, run here as written."""
CONFIG_COMMANDS = [
    "meltano config set tap-oktopost account_id YOUR_ACCOUNT_ID",
    "meltano config set tap-oktopost api_key YOUR_API_KEY",
]
pytestmark = pytest.mark.slow  # `make test-fast` leaves these out


def readme_command(line: str) -> str:
    """A README command made runnable here: this checkout for its placeholder path."""
    assert line in README, f"the README no longer shows: {line}"
    return line.replace(CHECKOUT, str(ROOT))


@dataclass
class OutsideProject:
    """A Meltano project outside the repository, with the tap installed in it."""

    folder: Path
    env: dict[str, str]

    def meltano(
        self, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return meltano_in(self.folder, self.env, *args, check=check)

    def dumped_config(self, env: dict[str, str] | None = None) -> dict[str, Any]:
        """The config file Meltano writes for the tap (`invoke --dump=config`)."""
        saved = self.env
        self.env = {**saved, **(env or {})}
        try:
            done = self.meltano("invoke", "--dump=config", "tap-oktopost")
        finally:
            self.env = saved
        config: dict[str, Any] = json.loads(done.stdout)
        return config


def user_env() -> dict[str, str]:
    """A user's shell: this venv's meltano on PATH, no settings of the repo's tests."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TAP_OKTOPOST_", "TARGET_", "MELTANO_"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    return env


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> OutsideProject:
    """`meltano init`, then the tap added from this checkout and target-jsonl."""
    home = tmp_path_factory.mktemp("elsewhere")
    env = user_env()
    init, copy_definition, add = (readme_command(line) for line in INSTALL_COMMANDS)
    subprocess.run(["bash", "-c", init], cwd=home, env=env, check=True, timeout=300)
    project = OutsideProject(home / "oktopost-elt", env)
    with building_from_checkout():
        for command in (copy_definition, add):
            subprocess.run(
                ["bash", "-c", command],
                cwd=project.folder,
                env=env,
                check=True,
                timeout=600,
                capture_output=True,
            )
    # Meltano Hub is out of reach here: the loader comes from this repo's definition.
    loaders = yaml.safe_load((ROOT / "meltano.yml").read_text())["plugins"]["loaders"]
    (jsonl,) = [loader for loader in loaders if loader["name"] == "target-jsonl"]
    (project.folder / "target-jsonl.yml").write_text(yaml.safe_dump(jsonl))
    project.meltano("add", "target-jsonl", "--from-ref", "target-jsonl.yml")
    project.meltano("config", "set", "target-jsonl", "destination_path", "output")
    project.meltano("config", "set", "target-jsonl", "do_timestamp_file", "false")
    return project


def test_the_tap_runs_from_the_venv_meltano_built(outside: OutsideProject) -> None:
    executable = (
        outside.folder / ".meltano" / "extractors" / "tap-oktopost" / "venv" / "bin"
    )
    assert (executable / "tap-oktopost").exists()
    definition = yaml.safe_load((outside.folder / "meltano.yml").read_text())
    (extractor,) = definition["plugins"]["extractors"]
    assert extractor["pip_url"] == str(ROOT)
    assert extractor["variant"] == "your-org"
    # Installed, not linked to this checkout: the package lives in that venv.
    done = subprocess.run(
        [
            str(executable / "python"),
            "-c",
            "import importlib.metadata as m, tap_oktopost\n"
            "print(tap_oktopost.__file__)\n"
            "print(sorted(d.metadata['Name'] for d in m.distributions()"
            " if 'backoff' in d.metadata['Name']))",
        ],
        cwd=outside.folder,
        capture_output=True,
        text=True,
        check=True,
    )
    module, backoffs = done.stdout.splitlines()
    assert module.startswith(str(outside.folder))
    # One `backoff` module, the SDK's: the tap's retries are its own loop.
    assert backoffs == "['python-backoff']"


def test_a_fresh_project_loads_the_exports_into_jsonl(
    outside: OutsideProject, stand_in: OktopostStandIn
) -> None:
    for export in demo_exports():
        stand_in.add_export(export)
    for line in CONFIG_COMMANDS:
        command = readme_command(line)
        command = command.replace("YOUR_ACCOUNT_ID", stand_in.account_id)
        command = command.replace("YOUR_API_KEY", stand_in.api_key)
        outside.meltano(*command.split()[1:])
    outside.meltano("config", "set", "tap-oktopost", "base_url", stand_in.base_url)
    # A passing fault during the sync, retried at once: its warning must read right
    # in the venv Meltano built (uv), not only in the repository's.
    stand_in.fail_next(
        f"/v2/bi-export/{POSTS_EXPORT}", 429, times=2, headers={"Retry-After": "0"}
    )

    done = outside.meltano("run", "tap-oktopost", "target-jsonl")

    output = outside.folder / "output"
    counts = {
        path.stem: len(path.read_text(encoding="utf-8").splitlines())
        for path in output.glob("*.jsonl")
    }
    assert counts == DEMO_COUNTS
    posts = [
        json.loads(line)
        for line in (output / "posts.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert Counter(post["export_id"] for post in posts) == {POSTS_EXPORT: 40}
    assert all(re.fullmatch(r"0[0-9]+", post["post_id"]) for post in posts)
    warning = (
        f"Export {POSTS_EXPORT}: Oktopost's rate limit (HTTP 429): retry 1 of 5 in 0 s"
        " as its Retry-After header asks"
    )
    assert warning in done.stderr
    assert "None: retry" not in done.stderr
    assert "Traceback" not in done.stderr


# -- every kind of setting, each way Meltano takes it ------------------------------

SETTINGS: dict[str, Any] = {
    # string (digits that must stay text), and a string with allowed values
    "test_export_id": "032000000000101",
    "column_typing": "widen",
    # integer
    "max_retries": 7,
    "max_uncompressed_bytes": 1048576,
    # number (seconds)
    "request_timeout": 45,
    "rate_limit_wait_seconds": 30,
    # boolean
    "flattening_enabled": True,
    # array
    "export_ids": ["032000000000101", "032000000000102"],
    # object
    "primary_keys": {"posts": ["post_id"]},
    "column_types": {"posts": {"clicks": "string"}},
}
CREDENTIALS = {
    "TAP_OKTOPOST_ACCOUNT_ID": "acme-account",
    "TAP_OKTOPOST_API_KEY": "s3cr3t-api-key-0123456789",
}


def as_text(value: Any) -> str:
    """A setting's value as a shell user types it: JSON for lists and objects."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def set_with_config_set(project: OutsideProject) -> dict[str, str]:
    for name, value in SETTINGS.items():
        project.meltano("config", "set", "tap-oktopost", name, as_text(value))
    return {}


def set_in_meltano_yml(project: OutsideProject) -> dict[str, str]:
    path = project.folder / "meltano.yml"
    definition = yaml.safe_load(path.read_text())
    (extractor,) = definition["plugins"]["extractors"]
    extractor["config"] = dict(SETTINGS)
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return {}


def set_in_environment(project: OutsideProject) -> dict[str, str]:
    return {f"TAP_OKTOPOST_{name.upper()}": as_text(v) for name, v in SETTINGS.items()}


@pytest.mark.parametrize(
    "way", [set_with_config_set, set_in_meltano_yml, set_in_environment]
)
def test_every_kind_of_setting_reaches_the_tap(
    outside: OutsideProject, way: Any
) -> None:
    files = {name: outside.folder / name for name in ("meltano.yml", ".env")}
    saved = {name: path.read_text() for name, path in files.items() if path.exists()}
    try:
        env = {**CREDENTIALS, **way(outside)}
        config = outside.dumped_config(env)
    finally:
        for name, path in files.items():
            if name in saved:
                path.write_text(saved[name])
            else:
                path.unlink(missing_ok=True)

    assert {name: config.get(name) for name in SETTINGS} == SETTINGS
    for name in ("max_retries", "request_timeout", "rate_limit_wait_seconds"):
        assert type(config[name]) is int, name
    # The tap takes that file as it is.
    tap = TapOktopost(config=config, parse_env_config=False, setup_mapper=False)
    assert tap.config["export_ids"] == SETTINGS["export_ids"]


def test_a_fraction_of_a_second_in_meltano_yml_reaches_the_tap(
    outside: OutsideProject,
) -> None:
    path = outside.folder / "meltano.yml"
    saved = path.read_text()
    definition = yaml.safe_load(saved)
    (extractor,) = definition["plugins"]["extractors"]
    extractor["config"] = {"request_timeout": 2.5}
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    try:
        config = outside.dumped_config(CREDENTIALS)
    finally:
        path.write_text(saved)
    assert config["request_timeout"] == 2.5


# -- what a maintainer publishes ---------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and wheel, built as `uv build` (PEP 517, isolated) builds them."""
    folder = tmp_path_factory.mktemp("dist")
    with building_from_checkout():
        subprocess.run(
            [str(BIN / "uv"), "build", "--quiet", "--out-dir", str(folder), str(ROOT)],
            capture_output=True,
            check=True,
            timeout=600,
        )
    return folder


def test_the_sdist_ships_the_package_and_its_licence_but_no_tests(built: Path) -> None:
    (sdist,) = built.glob("tap_oktopost-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", "tap_oktopost/tap.py"} <= names
    assert not [name for name in names if name.startswith(("tests", "scripts"))]


def test_the_wheel_declares_licence_urls_and_pythons(built: Path) -> None:
    (wheel,) = built.glob("tap_oktopost-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
        licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert b"Apache License" in archive.read(licence)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.10"
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert urls["Repository"] == "https://github.com/your-org/tap-oktopost"
    classifiers = metadata.get_all("Classifier") or []
    for version in ("3.10", "3.11", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert not [name for name in names if name.startswith("tests/")]
    definition = yaml.safe_load((ROOT / "hub" / "tap-oktopost.yml").read_text())
    assert definition["repo"] == urls["Repository"]
    assert definition["pip_url"] == f"git+{urls['Repository']}.git"


# -- every supported Python, without the SDK's patches of the standard library -----

RUN_DATES = """
import sys
from tap_oktopost.exports import parse_run_date
assert "singer_sdk" not in sys.modules
for value in sys.argv[1:]:
    print(parse_run_date(value, "1"))
"""


def test_run_dates_parse_without_the_sdks_fromisoformat_patch() -> None:
    values = {
        "2026-11-27T10:00:00Z": "2026-11-27T10:00:00+00:00",
        "2026-11-27T10:00:00.5Z": "2026-11-27T10:00:00.500000+00:00",
        "2026-11-27T12:00:00.123456+02:00": "2026-11-27T10:00:00.123456+00:00",
        "2026-11-27T12:00:00+0200": "2026-11-27T10:00:00+00:00",
        "2026-11-27 10:00:00": "2026-11-27T10:00:00+00:00",
        "2026-11-27": "2026-11-27T00:00:00+00:00",
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN_DATES, *values],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == list(values.values())

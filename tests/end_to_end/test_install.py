"""Installing the tap as a Meltano user does, outside this repository.

The README's install block runs as written in a temporary folder, its `<OWNER>`
repository replaced by a `file://` URL of a git repository of this checkout's files:
Meltano builds the tap's own virtual environment with uv from that `git+` URL, and
the project loads the stand-in's exports into JSONL, then the tables of exports and
files added between runs. The same project shows that every kind of setting
reaches the tap each way Meltano allows. Packaging checks build the sdist and wheel
a maintainer would publish.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
import yaml

from tap_oktopost.tables.names import table_name
from tap_oktopost.tap import TapOktopost
from tests.conftest import building_from_checkout, csv_text, meltano_in
from tests.end_to_end.test_targets import DEMO_COUNTS, POSTS_EXPORT
from tests.stand_ins.oktopost_stand_in import (
    OktopostStandIn,
    StandInExport,
    demo_exports,
    make_zip,
)

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PLACEHOLDER_REPO = "https://github.com/<OWNER>/tap-oktopost"
"""The README's repository: the one thing a user replaces."""


def readme_install_block() -> str:
    """The first `sh` block of the README's "Installing in your own Meltano project"."""
    section = README.split("## Installing in your own Meltano project", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the install section has no sh block"
    return match.group(1)


def checkout_repository(folder: Path) -> Path:
    """A git repository of this checkout's files as they are, committed or not."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]
    for args in (["init", "--quiet"], ["add", "-A"], ["commit", "--quiet", "-m", "x"]):
        subprocess.run([*git, *args], cwd=folder, check=True, capture_output=True)
    return folder


@dataclass
class OutsideProject:
    """A Meltano project outside the repository, set up by the README's block."""

    folder: Path
    env: dict[str, str]
    repository: str
    setup: subprocess.CompletedProcess[str]

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

    def output_files(self) -> set[Path]:
        return set(self.folder.glob("*.jsonl"))

    def run_pipeline(
        self, *options: str, check: bool = True
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, list[dict[str, Any]]]]:
        """`meltano run tap-oktopost target-jsonl`, and the rows of its new files."""
        before = self.output_files()
        done = self.meltano(
            "run", *options, "tap-oktopost", "target-jsonl", check=check
        )
        return done, rows_by_table(self.output_files() - before)


def rows_by_table(files: set[Path]) -> dict[str, list[dict[str, Any]]]:
    """target-jsonl's `<table>-<timestamp>.jsonl` files, read back by table."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for path in files:
        table = path.stem.rsplit("-", 1)[0]
        lines = path.read_text(encoding="utf-8").splitlines()
        tables.setdefault(table, []).extend(json.loads(line) for line in lines)
    return tables


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
def server() -> Iterator[OktopostStandIn]:
    """The stand-in the outside project loads from, serving the demo exports."""
    with OktopostStandIn(page_size=2) as stand_in:
        for export in demo_exports():
            stand_in.add_export(export)
        yield stand_in


@pytest.fixture(scope="module")
def outside(
    tmp_path_factory: pytest.TempPathFactory, server: OktopostStandIn
) -> OutsideProject:
    """The README's install block, run as written in a fresh folder.

    Only its placeholders change: the repository for this checkout's, the
    credentials for the stand-in's. `TAP_OKTOPOST_BASE_URL` points the tap at the
    stand-in, as an EU user's `base_url` would point it elsewhere.
    """
    home = tmp_path_factory.mktemp("elsewhere")
    source = checkout_repository(tmp_path_factory.mktemp("published"))
    repository = source.as_uri()
    block = readme_install_block()
    for placeholder in (PLACEHOLDER_REPO, "YOUR_ACCOUNT_ID", "YOUR_API_KEY"):
        assert block.count(placeholder) == 1, placeholder
    block = (
        block.replace(PLACEHOLDER_REPO, repository)
        .replace("YOUR_ACCOUNT_ID", server.account_id)
        .replace("YOUR_API_KEY", server.api_key)
    )
    assert "<" not in block, "a placeholder the test does not know"
    env = {**user_env(), "TAP_OKTOPOST_BASE_URL": server.base_url}
    # A passing fault during the first sync, retried at once: its warning must read
    # right in the venv Meltano built (uv), not only in the repository's.
    server.fail_next(
        f"/v2/bi-export/{POSTS_EXPORT}", 429, times=2, headers={"Retry-After": "0"}
    )
    setup = subprocess.run(
        ["bash", "-e", "-c", block],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert setup.returncode == 0, f"{setup.stdout[-3000:]}\n{setup.stderr[-6000:]}"
    return OutsideProject(home / "oktopost-elt", env, repository, setup)


def test_the_readme_block_installs_the_tap_and_loads_the_exports(
    outside: OutsideProject,
) -> None:
    first_run = rows_by_table(outside.output_files())
    assert {table: len(rows) for table, rows in first_run.items()} == DEMO_COUNTS
    assert Counter(post["export_id"] for post in first_run["posts"]) == {
        POSTS_EXPORT: 40
    }
    assert all(re.fullmatch(r"0[0-9]+", post["post_id"]) for post in first_run["posts"])
    warning = (
        f"Export {POSTS_EXPORT}: Oktopost's rate limit (HTTP 429): retry 1 of 5 in 0 s"
        " as its Retry-After header asks"
    )
    assert warning in outside.setup.stderr
    assert "None: retry" not in outside.setup.stderr
    assert "Traceback" not in outside.setup.stderr
    # `meltano add` shows no made-up owner or link as if it were real.
    shown = outside.setup.stdout + outside.setup.stderr
    assert "your-org" not in shown
    assert not re.search(r"^(Variant|Repository|Documentation):", shown, re.MULTILINE)
    assert "github.com" not in shown


def test_the_tap_runs_from_the_venv_meltano_built(outside: OutsideProject) -> None:
    executable = (
        outside.folder / ".meltano" / "extractors" / "tap-oktopost" / "venv" / "bin"
    )
    assert (executable / "tap-oktopost").exists()
    definition = yaml.safe_load((outside.folder / "meltano.yml").read_text())
    (extractor,) = definition["plugins"]["extractors"]
    assert extractor["pip_url"] == f"git+{outside.repository}"
    assert "variant" not in extractor
    assert extractor["use_cached_catalog"] is False
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


# -- exports and files added between runs -------------------------------------------


@dataclass
class NewTable:
    """A CSV file of generated rows, and the table the tap makes of it."""

    file_name: str
    rows: list[list[str]]

    @property
    def table(self) -> str:
        name = table_name(self.file_name)
        assert name
        return name

    @property
    def csv(self) -> str:
        return csv_text([["Row ID", "Label", "Count"], *self.rows])

    def expected(self) -> list[tuple[str, str]]:
        return sorted((row[0], row[1]) for row in self.rows)


def new_table(rng: random.Random) -> NewTable:
    word = rng.choice(["Lead Sources", "Clicks By Day", "Advocates", "Boards"])
    stem = f"{word} {rng.randrange(10**6):06d}"
    folder = rng.choice(["", "reports/", "2026/12/"])
    rows = [
        [
            f"r{rng.randrange(10**9)}-{n}",
            rng.choice(["a,b", "é ü", "plain", "x\ny"]),
            str(n),
        ]
        for n in range(rng.randint(1, 30))
    ]
    return NewTable(f"{folder}{stem}.csv", rows)


def new_export_id(rng: random.Random) -> str:
    return f"0329{rng.randrange(10**11):011d}"


def loaded_rows(
    loaded: dict[str, list[dict[str, Any]]], table: NewTable
) -> list[tuple[str, str]]:
    return sorted((row["row_id"], row["label"]) for row in loaded.get(table.table, []))


def archive_members(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {name: opened.read(name) for name in opened.namelist()}


@pytest.mark.parametrize("seed", [4, 20])
def test_a_readme_project_loads_exports_and_files_added_between_runs(
    outside: OutsideProject, server: OktopostStandIn, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    # A new export with tables no run has seen.
    tables = [new_table(rng) for _ in range(rng.randint(1, 2))]
    export_id = new_export_id(rng)
    server.add_export(
        StandInExport(
            id=export_id,
            last_run_date=f"2026-12-0{rng.randint(1, 9)} 10:00:00",
            archive=make_zip({table.file_name: table.csv for table in tables}),
        )
    )
    _, loaded = outside.run_pipeline()
    for table in tables:
        assert loaded_rows(loaded, table) == table.expected(), table.file_name
        assert {row["export_id"] for row in loaded[table.table]} == {export_id}

    # A new run of a known export, with a file the earlier runs did not have.
    added = new_table(rng)
    posts = next(e for e in demo_exports() if e.id == POSTS_EXPORT)
    assert posts.archive
    members: dict[str, str | bytes] = {
        **archive_members(posts.archive),
        added.file_name: added.csv,
    }
    server.set_run(POSTS_EXPORT, make_zip(members), f"2026-12-{10 + seed} 10:00:00")
    _, loaded = outside.run_pipeline()
    assert loaded_rows(loaded, added) == added.expected()
    assert len(loaded["posts"]) == DEMO_COUNTS["posts"]


def test_with_the_cached_catalog_a_new_table_fails_its_export_until_rediscovery(
    outside: OutsideProject, server: OktopostStandIn
) -> None:
    """What the README's `_use_cached_catalog false` line prevents, and the way out."""
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    outside.meltano("config", "unset", "tap-oktopost", "_use_cached_catalog")
    table = new_table(rng)
    export_id = new_export_id(rng)
    try:
        server.add_export(
            StandInExport(
                id=export_id,
                last_run_date="2026-12-03 10:00:00",
                archive=make_zip({table.file_name: table.csv}),
            )
        )
        done, loaded = outside.run_pipeline(check=False)
        assert done.returncode != 0
        assert table.table not in loaded
        errors = [
            line
            for line in done.stderr.splitlines()
            if "catalog lacks" in line and export_id in line
        ]
        assert errors, done.stderr[-3000:]
        assert all(table.table in line for line in errors)
        # `meltano invoke tap-oktopost --discover` leaves Meltano's catalog as it
        # is; a run that refreshes it loads the table.
        _, loaded = outside.run_pipeline("--refresh-catalog")
        assert loaded_rows(loaded, table) == table.expected()
    finally:
        outside.meltano("config", "set", "tap-oktopost", "_use_cached_catalog", "false")


def test_batch_files_are_not_for_target_jsonl(
    outside: OutsideProject, server: OktopostStandIn, tmp_path: Path
) -> None:
    """The README's claim: target-jsonl 0.1.4 cannot take BATCH messages."""
    rng = random.Random(11)  # noqa: S311 - test data, not secrets
    table = new_table(rng)
    server.add_export(
        StandInExport(
            id=new_export_id(rng),
            last_run_date="2026-12-04 10:00:00",
            archive=make_zip({table.file_name: table.csv}),
        )
    )
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": (tmp_path / "batches").as_uri()},
    }
    saved = outside.env
    outside.env = {**saved, "TAP_OKTOPOST_BATCH_CONFIG": json.dumps(batch_config)}
    try:
        done, loaded = outside.run_pipeline(check=False)
    finally:
        outside.env = saved
    assert done.returncode != 0
    assert "'NoneType' object has no attribute 'asdict'" in done.stderr
    assert table.table not in loaded


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
    linked = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    assert linked
    assert linked <= names  # the pages the README links to
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
    assert "your-org" not in str(metadata)
    classifiers = metadata.get_all("Classifier") or []
    for version in ("3.10", "3.11", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert not [name for name in names if name.startswith("tests/")]
    modules = {
        p.relative_to(ROOT).as_posix() for p in ROOT.glob("tap_oktopost/**/*.py")
    }
    assert "tap_oktopost/api/client.py" in modules  # the packages' modules too
    assert modules <= set(names)
    # Unpublished (no URLs: see pyproject.toml), the definition names no repository.
    definition = yaml.safe_load((ROOT / "hub" / "tap-oktopost.yml").read_text())
    published = urls.get("Repository")
    assert definition.get("repo") == published
    assert definition["pip_url"] == f"git+{published or PLACEHOLDER_REPO}.git"


# -- every supported Python, without the SDK's patches of the standard library -----

RUN_DATES = """
import sys
from tap_oktopost.api.exports import parse_run_date
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

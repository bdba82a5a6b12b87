"""The documentation's links, paths and names point at things that exist.

The README is short and sends readers to docs/ and CONTRIBUTING.md; a renamed heading, a
moved test module or a make target dropped would leave a reader at a dead end, so every
link between the files, every repository path and every test or make target they name is
checked here. The README's Troubleshooting rows are a few of the full table's, so that
tests/end_to_end/test_errors.py, which produces every message of the full table, covers
them too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tap_oktopost.tap import TapOktopost

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")]
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_BLOCK = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
REPO_PATH = re.compile(
    r"`((?:tests|scripts|benchmarks|hub|docs|tap_oktopost|\.github|\.ci)/[^`\s*<>]+)`"
)
TEST_NAME = re.compile(r"`(test_\w+)`")
MAKE_TARGET = re.compile(r"`make ([a-z][\w-]*)")
SETTINGS = set(TapOktopost.config_jsonschema["properties"])
"""Setting names, some of which (`test_export_id`) look like a test's."""


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as `-`."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = CODE_BLOCK.sub("", page.read_text(encoding="utf-8"))
    return {
        slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")
    }


def broken_links(page: Path) -> list[str]:
    """The page's links to files or headings that do not exist (web links aside)."""
    text = CODE_BLOCK.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (
            anchor and (linked.suffix != ".md" or anchor not in anchors(linked))
        ):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_link_between_the_pages_leads_somewhere(page: Path) -> None:
    assert broken_links(page) == []


@pytest.mark.parametrize(
    ("link", "broken"),
    [
        ("[a](other.md)", True),
        ("[a](real.md#no-such-heading)", True),
        ("[a](#nowhere)", True),
        ("[a](real.md#keys-state-and-re-runs)", False),
        ("[a](real.md#big-exports-batch-files-instead-of-records)", False),
        ("[a](#its-own-heading)", False),
        ("[a](https://example.invalid/x#y)", False),
    ],
)
def test_a_broken_link_is_found(tmp_path: Path, link: str, broken: bool) -> None:
    (tmp_path / "real.md").write_text(
        "# Keys, state and re-runs\n\n## Big exports: BATCH files instead of RECORDs\n"
    )
    page = tmp_path / "page.md"
    page.write_text(f"# Its `own` heading\n\nSee {link}.\n")
    assert bool(broken_links(page)) is broken


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_repository_path_named_exists(page: Path) -> None:
    named = REPO_PATH.findall(page.read_text(encoding="utf-8"))
    assert [path for path in named if not (ROOT / path.rstrip("/")).exists()] == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_test_named_exists(page: Path) -> None:
    sources = "\n".join(
        p.read_text(encoding="utf-8") for p in ROOT.glob("tests/**/*.py")
    )
    named = set(TEST_NAME.findall(page.read_text(encoding="utf-8"))) - SETTINGS
    assert [name for name in named if f"def {name}(" not in sources] == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_make_target_named_exists(page: Path) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))
    named = set(MAKE_TARGET.findall(page.read_text(encoding="utf-8")))
    assert named - targets == set()


def message_cells(page: Path, heading: str) -> list[str]:
    """The first cells of the `| message | ...` table under `heading` of the page."""
    section = f"\n{page.read_text(encoding='utf-8')}".split(f"\n{heading}\n", 1)[1]
    table = section.split("| message |", 1)[1].split("\n\n", 1)[0]
    return [
        line.split(" | ", 1)[0] for line in table.splitlines() if line.startswith("| ")
    ]


def test_the_readme_troubleshooting_rows_are_rows_of_the_full_table() -> None:
    shown = message_cells(ROOT / "README.md", "## Troubleshooting")
    full = message_cells(ROOT / "docs" / "troubleshooting.md", "# Troubleshooting")
    assert len(shown) >= 5
    assert [cell for cell in shown if cell not in full] == []

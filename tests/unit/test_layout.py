"""The packages show the pipeline: imports flow one way, and importing does nothing.

Each package's `__init__.py` states the order api <- tables <- archives <- sync <-
streams <- tap; these tests hold every module to it, and check that importing the
tap sets no process-wide state (the CSV field cap, codec handlers, log filters)
until a reader or a session needs it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tap_oktopost"
ORDER = ("api", "tables", "archives", "sync", "streams", "tap")
"""Each part may import only the parts before it (and itself)."""
SEAMS = "sdk_seams"
"""The SDK's internals (tap_oktopost.sdk_seams), which any part may import."""


def _part(module: str) -> str:
    """Name the part of the tap a dotted module belongs to."""
    return module.removeprefix("tap_oktopost.").split(".")[0]


def _imported(path: Path) -> set[str]:
    """Every tap module a file imports, TYPE_CHECKING imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tap_oktopost":
                found |= {f"tap_oktopost.{alias.name}" for alias in node.names}
            elif node.module.startswith("tap_oktopost."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tap_oktopost.")}
    return found


PACKAGED = sorted(
    path
    for part in ORDER[:4]
    for path in (PACKAGE / part).glob("*.py")
    if path.name != "__init__.py"
)


def test_every_module_of_the_tap_lives_in_a_package_or_is_streams_or_tap() -> None:
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top <= {"__init__", "__main__", "streams", "tap", "sdk_seams"}
    assert len(PACKAGED) >= 15
    for part in ORDER[:4]:
        assert ast.get_docstring(
            ast.parse((PACKAGE / part / "__init__.py").read_text())
        )


@pytest.mark.parametrize(
    "path", PACKAGED, ids=lambda path: f"{path.parent.name}.{path.stem}"
)
def test_a_package_imports_only_the_packages_before_it(path: Path) -> None:
    own = ORDER.index(path.parent.name)
    later = {
        module
        for module in _imported(path)
        if _part(module) != SEAMS and ORDER.index(_part(module)) > own
    }
    assert not later, f"{path.parent.name}/{path.name} imports {sorted(later)}"


def test_the_sdk_seams_import_no_part_of_the_tap() -> None:
    assert _imported(PACKAGE / f"{SEAMS}.py") == set()


def test_the_import_check_sees_a_later_import(tmp_path: Path) -> None:
    module = tmp_path / "archive.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from tap_oktopost.sync.runs import SyncPlan\n"
        "from tap_oktopost import streams\n"
    )
    assert _imported(module) == {"tap_oktopost.sync.runs", "tap_oktopost.streams"}


_PROBE = """
import codecs, csv, json, logging, pkgutil, importlib
import tap_oktopost
for module in pkgutil.walk_packages(tap_oktopost.__path__, "tap_oktopost."):
    if module.name != "tap_oktopost.__main__":
        importlib.import_module(module.name)
urllib3_log = logging.getLogger("urllib3.connectionpool")
def handlers():
    names = ("tap-oktopost-replace", "tap-oktopost-undefined-as-latin1")
    found = []
    for name in names:
        try:
            codecs.lookup_error(name)
            found.append(name)
        except LookupError:
            pass
    return found
imported = [csv.field_size_limit(), len(urllib3_log.filters), handlers()]

import io
from tap_oktopost.api.transport import CredentialFreeSession
from tap_oktopost.tables.csv_data import CsvSource
CredentialFreeSession().close()
CredentialFreeSession().close()
rows = list(CsvSource(io.BytesIO(b"Id,Text\\n1,caf\\xe9\\n")).rows)
said = []
class Keep(logging.Handler):
    def emit(self, record):
        said.append(record.getMessage())
urllib3_log.addHandler(Keep())
urllib3_log.setLevel(logging.DEBUG)
urllib3_log.debug('"GET /f.zip?X-Amz-Signature=%s HTTP/1.1" 200', "s3cr3t")
used = [csv.field_size_limit(), len(urllib3_log.filters), handlers(), rows, said]
print(json.dumps([imported, used]))
"""


def test_importing_the_tap_sets_nothing_until_a_reader_or_session_is_made() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    imported, used = json.loads(done.stdout)
    assert imported == [128 * 1024, 0, []]  # Python's own defaults
    limit, filters, handlers, rows, said = used
    assert limit == 8 * 1024 * 1024
    assert filters == 1  # one filter, however many sessions
    assert sorted(handlers) == [
        "tap-oktopost-replace",
        "tap-oktopost-undefined-as-latin1",
    ]
    assert rows == [["Id", "Text"], ["1", "café"]]
    assert said == ['"GET /f.zip?<redacted> HTTP/1.1" 200']

"""The next singer-sdk: the requirements to test it with, and whether a newer is out.

`requirements` prints the dev extra of pyproject.toml with its singer-sdk pin
replaced by the one in sdk-next.txt, for `make test-sdk-next` to install next to
the package (pip cannot override one requirement of an extra). `check` asks the
package registry, through pip and its configured index, for the newest singer-sdk
release or pre-release and says whether it is newer than the pin.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, before the standard library took it
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PIN_FILE = ROOT / "sdk-next.txt"
SDK = "singer-sdk"


def pinned() -> Requirement:
    """Give the singer-sdk requirement of sdk-next.txt, which must pin one version."""
    lines = [line.split("#")[0].strip() for line in PIN_FILE.read_text().splitlines()]
    (requirement,) = [Requirement(line) for line in lines if line]
    specifiers = list(requirement.specifier)
    if requirement.name != SDK or [s.operator for s in specifiers] != ["=="]:
        msg = f"{PIN_FILE.name}: expected one line {SDK}[...]==VERSION"
        raise SystemExit(msg)
    return requirement


def requirements() -> list[str]:
    """Give the dev extra's requirements, singer-sdk's pin replaced by the next."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev: list[str] = project["optional-dependencies"]["dev"]
    others = [line for line in dev if Requirement(line).name != SDK]
    return [str(pinned()), *others]


def newest_on_registry() -> Version:
    """Ask pip which singer-sdk versions the registry has; give the newest."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", SDK, "--pre"],
        capture_output=True,
        text=True,
        check=True,
    )
    return newest_listed(done.stdout)


def newest_listed(pip_output: str) -> Version:
    """Read the newest version from `pip index versions` output."""
    found = re.search(r"^Available versions: (.+)$", pip_output, re.MULTILINE)
    if found is None:
        msg = f"pip index versions {SDK}: no version list in its output"
        raise SystemExit(msg)
    return max(Version(v.strip()) for v in found.group(1).split(","))


def check() -> str:
    """Say whether the registry has a singer-sdk newer than the pin."""
    return verdict(newest_on_registry())


def verdict(newest: Version) -> str:
    """Say whether `newest` is newer than the pin, and what to do then."""
    (pin,) = pinned().specifier
    current = Version(pin.version)
    if newest > current:
        return (
            f"{SDK} {newest} is out, newer than the {current} that {PIN_FILE.name} "
            "pins: move the pin and run make test-sdk-next"
        )
    return f"{SDK} {current}, pinned in {PIN_FILE.name}, is the newest on the registry"


def main(argv: list[str]) -> None:
    """Run `requirements` or `check`."""
    if argv == ["requirements"]:
        print("\n".join(requirements()))
    elif argv == ["check"]:
        print(check())
    else:
        msg = "usage: python scripts/sdk_next.py requirements|check"
        raise SystemExit(msg)


if __name__ == "__main__":
    main(sys.argv[1:])

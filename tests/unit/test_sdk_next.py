"""scripts/sdk_next.py: the next SDK's requirements, and news of a newer one."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from scripts import sdk_next

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, before the standard library took it
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_the_requirements_are_the_dev_extra_with_the_pinned_pre_release() -> None:
    listed = [Requirement(line) for line in sdk_next.requirements()]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = [Requirement(line) for line in project["optional-dependencies"]["dev"]]

    sdks = [r for r in listed if r.name == "singer-sdk"]
    assert len(sdks) == 1
    (pin,) = sdks[0].specifier
    assert pin.operator == "=="
    assert Version(pin.version).is_prerelease or Version(pin.version) >= Version("0.55")
    assert {"msgspec", "testing"} <= sdks[0].extras
    assert [str(r) for r in listed if r.name != "singer-sdk"] == [
        str(r) for r in dev if r.name != "singer-sdk"
    ]
    # The package's own range admits the pin, or pip could not install both.
    (declared,) = [
        Requirement(line)
        for line in project["dependencies"]
        if Requirement(line).name == "singer-sdk"
    ]
    assert declared.specifier.contains(pin.version, prereleases=True)


def pip_output(versions: list[str]) -> str:
    return (
        "WARNING: pip index is currently an experimental command.\n"
        f"singer-sdk ({versions[0]})\n"
        f"Available versions: {', '.join(versions)}\n"
    )


@pytest.mark.parametrize("seed", range(8))
def test_the_newest_listed_version_is_found_in_any_order(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - test data
    versions = [
        f"0.{rng.randint(40, 56)}.{rng.randint(0, 9)}"
        + rng.choice(["", "a1", "b7", "rc2", ".dev3"])
        for _ in range(rng.randint(1, 30))
    ]
    shuffled = rng.sample(versions, len(versions))

    assert sdk_next.newest_listed(pip_output(shuffled)) == max(map(Version, versions))


def test_output_without_a_version_list_is_an_error_naming_the_command() -> None:
    with pytest.raises(SystemExit, match="pip index versions singer-sdk"):
        sdk_next.newest_listed("ERROR: No matching distribution found\n")


@pytest.mark.parametrize(
    ("newer", "says"),
    [
        ("0.55.0", "is out, newer than"),
        ("0.55.0rc1", "is out, newer than"),
        ("0.56.0a1", "is out, newer than"),
        ("0.54.9", "is the newest"),
    ],
)
def test_the_verdict_says_whether_to_move_the_pin(newer: str, says: str) -> None:
    (pin,) = sdk_next.pinned().specifier
    current = Version(pin.version)
    text = sdk_next.verdict(Version(newer))
    assert says in text
    if Version(newer) > current:
        assert newer in text
        assert "make test-sdk-next" in text
    else:
        assert str(current) in text


def test_a_pin_that_is_not_one_version_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for text in ("singer-sdk>=0.55.0b1\n", "requests==2.32.4\n", "# nothing\n"):
        pins = tmp_path / "sdk-next.txt"
        pins.write_text(text)
        monkeypatch.setattr(sdk_next, "PIN_FILE", pins)
        with pytest.raises((SystemExit, ValueError)):
            sdk_next.pinned()

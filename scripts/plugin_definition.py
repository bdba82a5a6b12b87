"""Write the Meltano Hub plugin definition from `tap-oktopost --about --format=json`.

The tap's own settings schema is the one source of truth for the settings, and the
package's `Repository` URL (pyproject.toml) for where it is installed from;
`tests/unit/test_meltano.py` checks that this file and `meltano.yml` still match them.
Until the project is published, pyproject.toml names no repository: the definition
then names no variant, repo or docs (nothing for `meltano add` to show as a real
link), and its `pip_url` holds the `<OWNER>` placeholder that the README's install
commands replace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "hub" / "tap-oktopost.yml"
UNPUBLISHED_PIP_URL = "git+https://github.com/<OWNER>/tap-oktopost.git"
"""Where the tap installs from once published: `<OWNER>` is for the user to replace."""
# Not `decimal` for numbers: Meltano 4.4 reads a decimal setting from the environment
# as a Decimal, then fails to write it to the tap's config ("Object of type Decimal
# is not JSON serializable"). The tap's numbers are seconds: whole ones are plenty,
# and meltano.yml may still give a fraction.
KINDS = {
    "string": "string",
    "integer": "integer",
    "number": "integer",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}


def about() -> dict[str, Any]:
    """Ask the installed tap to describe itself."""
    done = subprocess.run(
        [sys.executable, "-m", "tap_oktopost", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def repository() -> str | None:
    """Give the git repository that the installed package's metadata names, if any."""
    entries: list[str] = metadata("tap-oktopost").get_all("Project-URL") or []
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip() == "Repository":
            return url.strip()
    return None


def setting_kind(schema: dict[str, Any]) -> str:
    """Map a JSON schema type to a Meltano setting kind."""
    types = schema.get("type", "string")
    types = [types] if isinstance(types, str) else types
    non_null = [t for t in types if t != "null"] or ["string"]
    return KINDS.get(non_null[0], "string")


def settings(info: dict[str, Any]) -> list[dict[str, Any]]:
    """List the settings the way Meltano defines them."""
    listed = []
    for name, schema in info["settings"]["properties"].items():
        setting: dict[str, Any] = {"name": name, "kind": setting_kind(schema)}
        if "title" in schema:
            setting["label"] = schema["title"]
        if "description" in schema:
            setting["description"] = schema["description"]
        if schema.get("secret"):
            setting["sensitive"] = True
        if "default" in schema:
            setting["value"] = schema["default"]
        listed.append(setting)
    return listed


def definition(info: dict[str, Any], repo: str | None) -> dict[str, Any]:
    """Describe this variant as a Meltano Hub extractor definition.

    With a repository, the variant is named after its owner and installs from its
    git URL, as Meltano Hub names and installs plugins that are not on PyPI.
    """
    where = {"pip_url": UNPUBLISHED_PIP_URL}
    if repo:
        owner = urlsplit(repo).path.strip("/").split("/")[0].lower()
        where = {
            "variant": owner,
            "repo": repo,
            "docs": f"{repo}#readme",
            "pip_url": f"git+{repo}.git",
        }
    return {
        "name": "tap-oktopost",
        "namespace": "tap_oktopost",
        **where,
        "label": "Oktopost",
        "description": info["description"],
        "executable": "tap-oktopost",
        "capabilities": info["capabilities"],
        "settings_group_validation": [sorted(info["settings"].get("required", []))],
        "settings": settings(info),
        "keywords": ["meltano_sdk"],
        "maintenance_status": "active",
        "domain_url": "https://www.oktopost.com",
    }


def main() -> None:
    """Write the definition file."""
    DEFINITION.parent.mkdir(exist_ok=True)
    text = yaml.safe_dump(definition(about(), repository()), sort_keys=False, width=88)
    DEFINITION.write_text(text)
    print(f"wrote {DEFINITION.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

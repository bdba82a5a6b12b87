"""Every test here runs the tap or Meltano as processes, or a database: all slow.

`make test-fast` leaves them out (`-m "not slow"`); a test added here is marked with
them, so it never slows the edit-test loop by mistake.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this folder's tests slow, before `-m` selects."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)

"""Fixtures of the in-process tests that talk to a stand-in server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stand_ins.hostile_server import Hostile


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    """A hostile server for one test: each path answers as the test routes it."""
    with Hostile() as server:
        yield server

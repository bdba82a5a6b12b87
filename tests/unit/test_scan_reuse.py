"""A sync reusing discovery's whole-file scan gets exactly what its own scan gets.

Files are generated from seeds: columns of every type pair, UTF-8 (with and without
a BOM, damaged), cp1252 and UTF-16, every separator, repeated headers, NUL
characters, repeated header cells; syncs with catalog types, pins and names and
types from the state.
"""

from __future__ import annotations

import csv
import io
import json
import random
from typing import TYPE_CHECKING

import pytest

from tap_oktopost.tables.column_types import ColumnType
from tap_oktopost.tables.csv_data import (
    SCAN_RULES_VERSION,
    SEPARATORS,
    MemberScan,
    limit_field_size,
    rescan,
    scan_member,
    scan_of_json,
    scan_to_json,
)
from tap_oktopost.tables.names import EarlierNames, column_names
from tests.unit.test_column_types import KINDS, random_value

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO

HEADER_CELLS = [
    "Post Id",
    "Clicks",
    "Grüße",
    "Réseau social",
    "Date",
    "Reach",
    "post id",
    "Amount (€)",
    "",
]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-8-damaged", "cp1252", "utf-16"]
TYPES = list(ColumnType)
NUL_STAND_IN = "\x01"
"""Written in NUL's place, then replaced: Python 3.10's csv writer refuses a NUL."""


def generated_csv(rng: random.Random) -> bytes:
    """Give one CSV file's bytes: see the module's docstring for what varies."""
    width = rng.randint(1, 6)
    header = [rng.choice(HEADER_CELLS) for _ in range(width)]
    kinds = [rng.choice(KINDS) for _ in range(width)]
    rows: list[list[str]] = []
    for _ in range(rng.choice([0, 3, 60, 900])):
        row = [
            random_value(rng, rng.choice(KINDS) if rng.random() < 0.03 else kind)
            for kind in kinds
        ]
        if rng.random() < 0.02:
            row = list(header)  # files joined end to end
        if rng.random() < 0.01:
            row[0] += NUL_STAND_IN
        rows.append(row[: rng.randint(0, width)] if rng.random() < 0.03 else row)
        if rng.random() < 0.1:
            kinds[rng.randrange(width)] = rng.choice(KINDS)  # a type change mid-file
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=rng.choice(SEPARATORS),
        lineterminator=rng.choice(["\r\n", "\n"]),
    )
    writer.writerows([header, *rows])
    text = buffer.getvalue().replace(NUL_STAND_IN, "\x00")
    encoding = rng.choice(ENCODINGS)
    if encoding == "utf-8-damaged":
        data = text.encode()
        cut = rng.randint(0, len(data))
        return data[:cut] + b"\xfc" + data[cut:]
    return text.encode(encoding, errors="replace")


def sync_arguments(
    rng: random.Random, header_names: list[str]
) -> tuple[dict[str, ColumnType], dict[str, ColumnType], EarlierNames]:
    """Give a sync's catalog types, fixed columns and earlier names, at random."""
    declared = {name: rng.choice(TYPES) for name in header_names if rng.random() < 0.7}
    fixed = {name: rng.choice(TYPES[1:]) for name in header_names if rng.random() < 0.2}
    texts = {f"kept_{n}": rng.choice(HEADER_CELLS) for n in range(rng.randint(0, 2))}
    in_state = frozenset(rng.sample(header_names, k=min(2, len(header_names))))
    return declared, fixed, EarlierNames(texts, in_state | {"post_id_2"})


def opener(data: bytes) -> Callable[[], IO[bytes]]:
    return lambda: io.BytesIO(data)


def comparable(scan: MemberScan) -> tuple[object, ...]:
    """What the records and SCHEMA are made of; the decoding by identity."""
    return (id(scan.decoding), scan.header, scan.names, scan.types)


@pytest.mark.parametrize("seed", range(150))
def test_a_rescan_of_discoverys_scan_is_the_syncs_own_scan(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    data = generated_csv(rng)
    try:
        found = scan_member(opener(data), earlier=EarlierNames(in_state={"clicks"}))
    except csv.Error:
        return  # discovery failed the file: nothing to reuse
    declared, fixed, earlier = sync_arguments(rng, column_names(found.header))

    own = scan_member(opener(data), start_types=declared, pinned=fixed, earlier=earlier)
    stored = scan_of_json(json.loads(json.dumps(scan_to_json(found))))

    assert stored is not None
    assert comparable(rescan(found, declared, fixed, earlier)) == comparable(own)
    assert comparable(rescan(stored, declared, fixed, earlier)) == comparable(own)


def stored_scan() -> dict[str, object]:
    data = b"id,amount\r\n1,12345678901234567\r\n"
    return scan_to_json(scan_member(opener(data)))


@pytest.mark.parametrize(
    "change",
    [
        {"rules": SCAN_RULES_VERSION + 1},
        {"rules": None},
        {"field_limit": 10},
        {"encoding": "latin-1"},
        {"types": ["integer", "money"]},
        {"types": ["integer"]},
        {"header": "id,amount"},
        {"float_kept": [True, "no"]},
    ],
)
def test_a_stored_scan_of_other_rules_or_damaged_is_not_reused(
    change: dict[str, object],
) -> None:
    assert scan_of_json(stored_scan()) is not None
    assert scan_of_json({**stored_scan(), **change}) is None


def test_a_scan_stored_under_another_field_limit_is_not_reused() -> None:
    stored = stored_scan()
    limit_field_size(1024)
    assert scan_of_json(stored) is None
    assert scan_of_json(stored_scan()) is not None

"""Shifted and endless paging through `meltano run` into PostgreSQL.

Meltano discovers in one process and syncs in another: the listing is made twice,
and the stand-in's paging shape shifts under both. Rows are counted per export in
PostgreSQL, and bookmarks read from Meltano's state.
"""

from __future__ import annotations

from tests.end_to_end.test_targets import (  # noqa: F401 - `project` is the fixture
    Project,
    project,
    sql,
)
from tests.in_process.test_paging import export_id, numbered_export, rows_of
from tests.stand_ins.oktopost_stand_in import PagingShape

TARGET = "target-postgres"


def rows_by_export(schema: str) -> dict[str, int]:
    return {
        key: int(count)
        for key, count in sql(
            'select export_id, count(*) from :"schema".figures group by 1',
            schema=schema,
        )
    }


def expected_rows(*numbers: int) -> dict[str, int]:
    return {export_id(number): len(rows_of(number)) - 1 for number in numbers}


def test_meltano_loads_every_export_through_shifted_paging(
    project: Project,  # noqa: F811 - the fixture
) -> None:
    """Pages of 3, Total over by 3, each page repeating the last of the one before;
    while discovery lists, one export is deleted and one created."""
    stand_in = project.stand_in
    for number in range(1, 8):
        stand_in.add_export(numbered_export(number))
    stand_in.page_size = 3
    stand_in.paging = PagingShape(
        total_error=3,
        overlap=1,
        deletes={1: export_id(2)},
        inserts={2: (0, numbered_export(9))},
    )

    project.run(TARGET)

    loaded = [1, 3, 4, 5, 6, 7, 9]
    assert rows_by_export(project.schema) == expected_rows(*loaded)
    bookmarks = project.bookmarks(TARGET)
    assert {key for key, run in bookmarks.items() if run} == {
        export_id(number) for number in loaded
    }


def test_meltano_fails_an_endless_listing_then_loads_the_rest_once_it_ends(
    project: Project,  # noqa: F811 - the fixture
) -> None:
    stand_in = project.stand_in
    for number in range(1, 6):
        stand_in.add_export(numbered_export(number))
    stand_in.page_size = 2
    stand_in.paging = PagingShape(endless=True)

    failed = project.run(TARGET, check=False)

    assert failed.returncode != 0
    assert "Listing exports was cut short" in failed.stderr
    assert rows_by_export(project.schema) == expected_rows(1, 2)
    assert set(project.bookmarks(TARGET)) == {export_id(1), export_id(2)}

    stand_in.paging = PagingShape()
    project.run(TARGET)

    assert rows_by_export(project.schema) == expected_rows(1, 2, 3, 4, 5)

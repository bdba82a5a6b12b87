"""Listing exports: shifted paging lists every export once; endless paging stops.

Oktopost's paging shifts when exports are created or deleted while the tap lists
them, and its `Total` may be off. The shapes are generated (seeded) on the
stand-in's `PagingShape`; paging that never ends comes from it too, or from the
hostile server where the ids must change on every page.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections import Counter
from pathlib import Path

import pytest
import requests

from tap_oktopost.api.client import MAX_PAGES, MAX_PASSES, STALLED_PAGES, OktopostClient
from tap_oktopost.tap import TapOktopost
from tests.conftest import (
    config_for,
    csv_text,
    discover_in_process,
    export_with,
    run_tap,
    sync_in_process,
)
from tests.in_process.test_client import FakeClock, client_for
from tests.stand_ins.hostile_server import Hostile, HostileHandler, json_answer, pages
from tests.stand_ins.oktopost_stand_in import (
    OktopostStandIn,
    PagingShape,
    StandInExport,
)

LISTING_CUT_SHORT = "Listing exports was cut short"


def export_id(number: int) -> str:
    return f"032{number:012d}"


def rows_of(number: int) -> list[list[str]]:
    """Each export's own rows: a count and values no other export has."""
    return [["id", "value"]] + [
        [f"{number}-{row}", str(number * 1000 + row)] for row in range(number % 4 + 1)
    ]


def numbered_export(number: int) -> StandInExport:
    return export_with(export_id(number), {"figures.csv": csv_text(rows_of(number))})


def random_shape(seed: int, stand_in: OktopostStandIn) -> tuple[list[str], PagingShape]:
    """Add 0-12 exports and give a shifted (but ending) paging shape over them.

    The page size, the Total's error, the overlap of pages, and at most one
    export created and one deleted while listing are drawn from `seed`.
    """
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    count = rng.randint(0, 12)
    ids = [export_id(number) for number in range(1, count + 1)]
    for number in range(1, count + 1):
        stand_in.add_export(numbered_export(number))
    stand_in.page_size = rng.randint(1, 5)
    shape = PagingShape(
        total_error=rng.randint(-3, 3),
        overlap=rng.randint(0, stand_in.page_size - 1),
    )
    if rng.random() < 0.6:
        page = rng.randint(0, 3)
        position = rng.randint(0, count)
        shape.inserts[page] = (position, numbered_export(100 + seed % 100))
    if ids and rng.random() < 0.6:
        shape.deletes[rng.randint(0, 3)] = rng.choice(ids)
    stand_in.paging = shape
    return ids, shape


def current_ids(stand_in: OktopostStandIn) -> set[str]:
    """The exports the stand-in holds now, after what the shape changed."""
    return {export["Id"] for export in stand_in._list_items(None)}


def listing_pages(stand_in: OktopostStandIn) -> int:
    return sum(
        1
        for request in stand_in.api_calls()
        if request.path.startswith("/v2/bi-export?")
    )


@pytest.mark.parametrize("seed", range(120))
def test_shifted_paging_lists_every_export_once(
    stand_in: OktopostStandIn, seed: int
) -> None:
    random_shape(seed, stand_in)

    listing = client_for(stand_in, FakeClock()).list_exports()

    ids = [str(export["Id"]) for export in listing.exports]
    assert listing.incomplete is None
    assert len(ids) == len(set(ids))
    assert set(ids) == current_ids(stand_in)
    assert listing_pages(stand_in) <= MAX_PASSES * (len(ids) + 4)


@pytest.mark.parametrize(
    ("exports", "page_size", "total_error", "overlap"),
    [(3, 3, 3, 1), (3, 3, 0, 1), (7, 3, 2, 2), (5, 2, -2, 0), (6, 3, -3, 0)],
)
def test_the_shapes_of_the_issue_list_every_export(
    stand_in: OktopostStandIn,
    exports: int,
    page_size: int,
    total_error: int,
    overlap: int,
) -> None:
    """First: pages of 3, Total over-counted by 3, page 1 repeating page 0's last."""
    for number in range(1, exports + 1):
        stand_in.add_export(numbered_export(number))
    stand_in.page_size = page_size
    stand_in.paging = PagingShape(total_error=total_error, overlap=overlap)

    listing = client_for(stand_in, FakeClock()).list_exports()

    assert [export["Id"] for export in listing.exports] == [
        export_id(number) for number in range(1, exports + 1)
    ]
    assert listing.incomplete is None


def test_a_listing_whose_pages_hold_still_asks_each_page_once(
    stand_in: OktopostStandIn,
) -> None:
    for number in range(1, 8):
        stand_in.add_export(numbered_export(number))
    stand_in.page_size = 3

    listing = client_for(stand_in, FakeClock()).list_exports()

    assert len(listing.exports) == 7
    assert [request.path for request in stand_in.api_calls()] == [
        f"/v2/bi-export?_page={page}" for page in range(3)
    ]


@pytest.mark.parametrize("seed", range(6))
def test_a_sync_through_shifted_paging_loads_every_export(
    stand_in: OktopostStandIn, seed: int
) -> None:
    random_shape(seed * 7 + 3, stand_in)

    run = sync_in_process(config_for(stand_in))

    expected = current_ids(stand_in)
    assert run.returncode == 0, run.stderr[-2000:]
    assert LISTING_CUT_SHORT not in run.stderr
    rows = Counter(record["export_id"] for record in run.records("figures"))
    assert rows == {key: len(rows_of(int(key[3:]))) - 1 for key in expected}
    assert {key for key in expected if run.bookmark(key)} == expected


@pytest.mark.parametrize(("exports", "page_size"), [(5, 2), (4, 3), (9, 4), (3, 1)])
def test_pages_that_never_end_load_what_was_listed_and_fail_the_sync(
    stand_in: OktopostStandIn, exports: int, page_size: int
) -> None:
    """Every page is page 0 again: Total is never reached, no page is empty."""
    for number in range(1, exports + 1):
        stand_in.add_export(numbered_export(number))
    stand_in.page_size = page_size
    stand_in.paging = PagingShape(endless=True)

    run = sync_in_process(config_for(stand_in))

    listed = {export_id(number) for number in range(1, page_size + 1)}
    assert run.returncode == 1
    rows = Counter(record["export_id"] for record in run.records("figures"))
    assert set(rows) == listed
    assert {key for key in listed if run.bookmark(key)} == listed
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR")]
    assert any(
        f"{LISTING_CUT_SHORT}: pages 1 to {STALLED_PAGES} listed no export unseen "
        "before" in line
        for line in errors
    ), errors
    assert any("Exports failed" in line for line in errors)
    assert listing_pages(stand_in) == STALLED_PAGES + 1


def test_discovery_logs_an_endless_listing_at_error(
    stand_in: OktopostStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    for number in range(1, 6):
        stand_in.add_export(numbered_export(number))
    stand_in.page_size = 2
    stand_in.paging = PagingShape(endless=True)

    with caplog.at_level(logging.INFO):
        catalog = discover_in_process(config_for(stand_in))

    assert [
        record.levelname
        for record in caplog.records
        if LISTING_CUT_SHORT in record.getMessage()
    ] == ["ERROR"]
    assert "figures" in {entry["tap_stream_id"] for entry in catalog["streams"]}


def hostile_client(hostile: Hostile) -> OktopostClient:
    clock = FakeClock()
    return OktopostClient(
        hostile.base_url,
        requests.auth.HTTPBasicAuth(hostile.account_id, hostile.api_key),
        timeout=10,
        max_retries=0,
        rate_limit_wait=0,
        logger=logging.getLogger("tap-oktopost-test"),
        sleep=clock.sleep,
        clock=clock,
    )


def test_new_ids_on_every_page_stop_at_max_pages() -> None:
    with Hostile() as hostile:
        hostile.route("/v2/bi-export", pages(lambda n: [{"Id": f"e{n}"}], 10**6))
        listing = hostile_client(hostile).list_exports()
        calls = len(hostile.hits("/v2/bi-export"))

    assert calls == MAX_PAGES
    assert len(listing.exports) == MAX_PAGES
    assert listing.incomplete is not None
    assert f"no end after {MAX_PAGES} pages" in listing.incomplete


@pytest.mark.parametrize("size", [1, 2, 5])
def test_the_same_page_forever_stops_after_a_few_pages(size: int) -> None:
    same = [{"Id": f"e{index}"} for index in range(size)]
    with Hostile() as hostile:
        hostile.route("/v2/bi-export", pages(lambda n: same, 99999))
        listing = hostile_client(hostile).list_exports()
        calls = len(hostile.hits("/v2/bi-export"))

    assert calls == STALLED_PAGES + 1
    assert listing.exports == same
    assert listing.incomplete is not None
    assert "goes round in circles" in listing.incomplete


@pytest.mark.parametrize("size", [1, 2, 4])
def test_a_server_answering_every_page_with_the_whole_list_lists_it_once(
    size: int,
) -> None:
    """`_page` ignored: past a Total met, a page with nothing new is the end."""
    everything = [{"Id": f"e{index}"} for index in range(size)]
    with Hostile() as hostile:
        hostile.route("/v2/bi-export", pages(lambda n: everything, size))
        listing = hostile_client(hostile).list_exports()
        calls = len(hostile.hits("/v2/bi-export"))

    assert listing.exports == everything
    assert listing.incomplete is None
    assert calls == 2


def test_pages_that_change_on_every_pass_stop_after_max_passes() -> None:
    """The same ids, but a Total that moves on every page: exports come and go."""
    totals = itertools.count(10)
    exports = [{"Id": "a"}, {"Id": "b"}, {"Id": "c"}]

    def respond(handler: HostileHandler) -> None:
        number = int(handler.path.partition("_page=")[2] or 0)
        page = exports[number * 2 : number * 2 + 2]
        json_answer(page, key="Exports", Total=next(totals))(handler)

    with Hostile() as hostile:
        hostile.route("/v2/bi-export", respond)
        listing = hostile_client(hostile).list_exports()
        calls = len(hostile.hits("/v2/bi-export"))

    assert calls == MAX_PASSES * 2
    assert listing.exports == exports
    assert listing.incomplete is not None
    assert f"changed on each of {MAX_PASSES} passes" in listing.incomplete


def test_every_page_is_listed_once_per_process(stand_in: OktopostStandIn) -> None:
    """The export list stream and the exports to load share one listing."""
    for number in range(1, 8):
        stand_in.add_export(numbered_export(number))
    stand_in.add_export(
        StandInExport(id=export_id(50), status="inactive", last_run_date=None)
    )
    stand_in.page_size = 3

    run = sync_in_process(config_for(stand_in))

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.records("export_list_metadata")) == 8
    assert len(run.records("active_export_metadata")) == 7
    assert listing_pages(stand_in) == 3


def test_configured_export_ids_list_nothing_when_the_list_is_not_selected(
    stand_in: OktopostStandIn,
) -> None:
    for number in range(1, 4):
        stand_in.add_export(numbered_export(number))
    config = config_for(stand_in, export_ids=[export_id(2)])
    catalog = discover_in_process(config)
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "export_list_metadata":
            for metadata in entry["metadata"]:
                if metadata["breadcrumb"] == []:
                    metadata["metadata"]["selected"] = False
    stand_in.reset_log()

    run = sync_in_process(config, catalog=catalog)

    assert run.returncode == 0, run.stderr[-2000:]
    assert listing_pages(stand_in) == 0
    assert {record["export_id"] for record in run.records("figures")} == {export_id(2)}


def test_the_tap_filters_active_exports_from_the_one_listing(
    stand_in: OktopostStandIn,
) -> None:
    stand_in.add_export(numbered_export(1))
    stand_in.add_export(
        StandInExport(id=export_id(2), status="inactive", last_run_date=None)
    )

    tap = TapOktopost(config=config_for(stand_in))

    assert tap.extraction.export_ids == [export_id(1)]
    assert [export["Id"] for export in tap.extraction.export_listing.exports] == [
        export_id(1),
        export_id(2),
    ]


@pytest.mark.slow  # two tap processes, as Meltano runs them
def test_discovery_and_sync_processes_load_every_export_through_shifted_paging(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    """The issue's account: pages of 3, Total over by 3, page 1 repeating page 0's
    last export; an export is created while the sync lists."""
    for number in range(1, 4):
        stand_in.add_export(numbered_export(number))
    stand_in.page_size = 3
    stand_in.paging = PagingShape(total_error=3, overlap=1)
    config = config_for(stand_in)
    catalog = run_tap(config, tmp_path, discover=True).messages[0]
    stand_in.paging.inserts[1] = (0, numbered_export(4))

    run = run_tap(config, tmp_path, catalog=catalog)

    rows = Counter(record["export_id"] for record in run.records("figures"))
    assert rows == {export_id(n): len(rows_of(n)) - 1 for n in range(1, 5)}
    assert LISTING_CUT_SHORT not in run.stderr


@pytest.mark.slow  # two tap processes, as Meltano runs them
def test_endless_paging_through_the_command_line_exits_1_after_loading(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    for number in range(1, 6):
        stand_in.add_export(numbered_export(number))
    stand_in.page_size = 2
    stand_in.paging = PagingShape(endless=True)
    config = config_for(stand_in)
    discovery = run_tap(config, tmp_path, discover=True)

    run = run_tap(config, tmp_path, catalog=discovery.messages[0], check=False)

    assert LISTING_CUT_SHORT in discovery.stderr
    assert run.returncode == 1
    assert {record["export_id"] for record in run.records("figures")} == {
        export_id(1),
        export_id(2),
    }
    assert run.bookmark(export_id(1)) is not None
    assert [line for line in run.stderr.splitlines() if LISTING_CUT_SHORT in line] != []
    assert "Traceback" not in run.stderr

"""The SDK's standard tap tests, as the Singer ecosystem checks a tap.

They run over each dataset the stand-in serves (`DATASETS`): the demo exports,
an export whose columns change type after row 2,000 (the catalog must say the
types the sync sends), and one with a header-only CSV. A table without rows
cannot show a record, so the tests that need one skip it (see the README).

`get_tap_test_class` discovers while pytest collects, so each dataset's stand-in
starts when this module is imported, and stops at the end of the session.

`_sdc_unfit_values` holds a value only where a value did not fit a type the tap
keeps (a pin, a type from the state): the drifting dataset with a pin shows it;
elsewhere it is null in every row, and its object test is skipped, saying so.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from typing import Any

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from singer_sdk.testing.templates import AttributeTestTemplate

from tap_oktopost.tables.names import UNFIT_VALUES
from tap_oktopost.tap import TapOktopost
from tests.stand_ins.oktopost_stand_in import (
    DATASETS,
    HEADER_ONLY_TABLE,
    OktopostStandIn,
)


def _serving(dataset: str) -> OktopostStandIn:
    stand_in = OktopostStandIn(page_size=2).start()
    atexit.register(stand_in.stop)
    for export in DATASETS[dataset]():
        stand_in.add_export(export)
    return stand_in


def _config(stand_in: OktopostStandIn, **settings: Any) -> dict[str, Any]:
    """Settings for one dataset; its archive cache in a folder of its own."""
    cache = tempfile.mkdtemp(prefix="tap-oktopost-standard-")
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    return {
        "account_id": stand_in.account_id,
        "api_key": stand_in.api_key,
        "base_url": stand_in.base_url,
        "archive_cache_dir": cache,
        **settings,
    }


@pytest.fixture(autouse=True)
def _each_attribute_test_reads_its_own_attribute(
    request: pytest.FixtureRequest,
) -> None:
    """Give each attribute test the values of its own attribute, or skip it, saying why.

    singer-sdk (0.54 and 0.55) makes one template per kind of attribute test and
    caches the values of the first attribute it ran (`non_null_attribute_values`):
    every later attribute of that kind was tested on the first one's values, and
    which came first depended on the order and the xdist worker.
    """
    template = getattr(request.node.obj, "__self__", None)
    if not isinstance(template, AttributeTestTemplate):
        return
    template.__dict__.pop("non_null_attribute_values", None)
    params = request.node.callspec.params
    if params["attribute_name"] != UNFIT_VALUES:
        return
    records = request.getfixturevalue("runner").records[params["stream"].name]
    if all(record.get(UNFIT_VALUES) is None for record in records):
        pytest.skip(f"{UNFIT_VALUES} is null in every row: every value fits its type")


TestTapOktopost = get_tap_test_class(
    TapOktopost,
    config=_config(_serving("demo")),
    suite_config=SuiteConfig(max_records_limit=None),
)
TestTapOktopostTypesChangingLate = get_tap_test_class(
    TapOktopost,
    config=_config(_serving("drifting")),
    suite_config=SuiteConfig(max_records_limit=None),
)
TestTapOktopostPinnedColumn = get_tap_test_class(
    TapOktopost,
    config=_config(
        _serving("drifting"),
        column_types={"clicks": {"click_count": "integer", "rate": "number"}},
    ),
    suite_config=SuiteConfig(max_records_limit=None),
)
TestTapOktopostHeaderOnlyCsv = get_tap_test_class(
    TapOktopost,
    config=_config(_serving("header_only")),
    suite_config=SuiteConfig(
        max_records_limit=None, ignore_no_records_for_streams=[HEADER_ONLY_TABLE]
    ),
)

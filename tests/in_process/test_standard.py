"""The SDK's standard tap tests, as the Singer ecosystem checks a tap.

They run over each dataset the stand-in serves (`DATASETS`): the demo exports,
an export whose columns change type after row 2,000 (the catalog must say the
types the sync sends), and one with a header-only CSV. A table without rows
cannot show a record, so the tests that need one skip it (see the README).

`get_tap_test_class` discovers while pytest collects, so each dataset's stand-in
starts when this module is imported, and stops at the end of the session.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile

from singer_sdk.testing import SuiteConfig, get_tap_test_class

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


def _config(stand_in: OktopostStandIn) -> dict[str, str]:
    """Settings for one dataset; its archive cache in a folder of its own."""
    cache = tempfile.mkdtemp(prefix="tap-oktopost-standard-")
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    return {
        "account_id": stand_in.account_id,
        "api_key": stand_in.api_key,
        "base_url": stand_in.base_url,
        "archive_cache_dir": cache,
    }


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
TestTapOktopostHeaderOnlyCsv = get_tap_test_class(
    TapOktopost,
    config=_config(_serving("header_only")),
    suite_config=SuiteConfig(
        max_records_limit=None, ignore_no_records_for_streams=[HEADER_ONLY_TABLE]
    ),
)

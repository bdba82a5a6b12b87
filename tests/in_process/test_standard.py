"""The SDK's standard tap tests, as the Singer ecosystem checks a tap.

`get_tap_test_class` discovers while pytest collects, so the stand-in serving the
demo exports starts when this module is imported, and stops at the end of the
session.
"""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_oktopost.tap import TapOktopost
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, demo_exports

STAND_IN = OktopostStandIn(page_size=2).start()
atexit.register(STAND_IN.stop)
for export in demo_exports():
    STAND_IN.add_export(export)

TestTapOktopost = get_tap_test_class(
    TapOktopost,
    config={
        "account_id": STAND_IN.account_id,
        "api_key": STAND_IN.api_key,
        "base_url": STAND_IN.base_url,
    },
    suite_config=SuiteConfig(max_records_limit=None),
)

"""The SDK's standard tap tests, against the stand-in serving the demo exports."""

from __future__ import annotations

from click.testing import CliRunner
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_oktopost.tap import TapOktopost
from tests.conftest import config_for
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, demo_exports

# The SDK discovers streams while pytest collects tests, so the stand-in must
# already listen when this module is imported.
STAND_IN = OktopostStandIn(page_size=2).start()
for export in demo_exports():
    STAND_IN.add_export(export)

TestTapOktopost = get_tap_test_class(
    tap_class=TapOktopost,
    config=config_for(STAND_IN),
    suite_config=SuiteConfig(max_records_limit=None),
)


def test_help_says_what_test_does_here() -> None:
    result = CliRunner().invoke(TapOktopost.get_singer_command(), ["--help"])
    assert result.exit_code == 0
    help_text = " ".join(result.output.split())
    assert "--test to check the settings and credentials with one API call" in (
        help_text
    )
    assert "single record" not in help_text

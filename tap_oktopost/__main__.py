"""Run the tap as `python -m tap_oktopost`."""

from __future__ import annotations

from tap_oktopost.tap import TapOktopost

TapOktopost.cli()

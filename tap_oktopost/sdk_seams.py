"""Every use of singer-sdk internals, in one place: what it has no public way to do.

Each name here is private to the SDK and may change in any release without notice;
tests/unit/test_sdk_seams.py pins each one with a contract test naming what the tap
relies on, so that a new SDK which changes one fails there, by name, rather than
somewhere in a sync. The rest of the package uses the SDK's public API only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from singer_sdk import Tap

# The `batch_config` setting parsed (encoding, storage, batch_size): the SDK keeps
# the class in a private module, and hands it to the public `get_batches` hook.
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["BaseBatchFileEncoding", "BatchConfig", "SeamedTap"]


class SeamedTap(Tap):
    """A Tap whose private SDK hooks call public methods a subclass overrides.

    The SDK validates the settings in `_validate_config` and handles SIGTERM and
    SIGINT in `_handle_termination` (which it installs as the signal handler): it
    has no public hook for either.
    """

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Hand the SDK's settings validation to `validate_settings`."""
        return self.validate_settings(raise_errors=raise_errors)

    def validate_settings(self, *, raise_errors: bool) -> list[str]:
        """Validate the settings as the SDK does; give the errors' messages."""
        return super()._validate_config(raise_errors=raise_errors)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Hand a SIGTERM or SIGINT to `on_termination_signal`."""
        self.on_termination_signal(signum, frame)

    def on_termination_signal(self, signum: int, frame: FrameType | None) -> None:
        """Act on SIGTERM or SIGINT: by default, as the SDK does."""
        self.sdk_terminate(signum, frame)

    def sdk_terminate(self, signum: int, frame: FrameType | None) -> None:
        """Do what the SDK does on a signal: write the state, then exit 0.

        The exit is a SystemExit; under singer-sdk 0.55, a second signal while the
        first is handled writes the state and returns instead.
        """
        super()._handle_termination(signum, frame)

"""Progress of a table's rows as they go out, so that a long sync is never silent.

Rows written in batches (`tap_oktopost.output`) or into BATCH files pass the SDK's
per-record counter by, so they are added to it here as they go out, and its
`record_count` metric comes at its interval with the count sent; and every
PROGRESS_SECONDS a line names the table, the export, the rows so far and the pace,
which the SDK's metric does not.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from singer_sdk import metrics

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable
    from types import TracebackType

PROGRESS_SECONDS = 30.0


class TableProgress:
    """Counts one table's rows of one export run as they go out."""

    def __init__(
        self,
        logger: logging.Logger,
        table: str,
        export_id: str,
        counter: metrics.Counter | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.table = table
        self.export_id = export_id
        self.counter = counter
        self.clock = clock
        self.every = PROGRESS_SECONDS
        self.rows = 0
        self.started = self.said = clock()

    def sent(self, rows: int, *, counted: bool = False) -> None:
        """Add rows that went out; `counted`: the SDK's counter has them already."""
        self.rows += rows
        if self.counter is not None and not counted:
            self.counter.increment(rows)
        now = self.clock()
        if now - self.said >= self.every:
            self.said = now
            self.logger.info(
                "Stream %s, export %s: %d rows sent so far (%.0f rows/s)",
                self.table,
                self.export_id,
                self.rows,
                self.rows / max(now - self.started, 1e-9),
            )


class QuietCounter(metrics.Counter):
    """A record counter that says nothing when nothing was counted.

    The SDK syncs every table once per export run; a run holds a few of them, and a
    line of zeros for each of the others hides the counts that matter.
    """

    @classmethod
    def like(cls, counter: metrics.Counter) -> QuietCounter:
        """Make a quiet counter with the tags of the SDK's own."""
        return cls(counter.metric, dict(counter.tags), counter.log_interval)

    def exit(self) -> None:
        """Log the count, unless it is zero."""
        if self.value:
            super().exit()


class QuietTimer(metrics.Timer):
    """A sync timer silent for a sync that had nothing to do, unless it failed."""

    @classmethod
    def like(cls, timer: metrics.Timer) -> QuietTimer:
        """Make a quiet timer with the tags of the SDK's own."""
        return cls(timer.metric, dict(timer.tags))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """Log the time only for a failure."""
        if exc_type is not None:
            super().__exit__(exc_type, exc_val, exc_tb)

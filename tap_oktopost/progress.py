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

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from singer_sdk import metrics

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

"""Which type each CSV column gets in a sync, under the column_typing setting.

SQL targets cannot be trusted to change a column's type: target-postgres refuses to,
Snowflake refuses NUMBER -> VARCHAR and rounds integer -> number silently. So by
default a column keeps the type its table already has at the target; a value that
does not fit it travels as text in `_sdc_unfit_values` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tap_oktopost.tables.column_types import ColumnType, widen

if TYPE_CHECKING:
    from collections.abc import Mapping

KEEP = "keep"
WIDEN = "widen"
TEXT = "text"
TYPING_POLICIES = (KEEP, WIDEN, TEXT)
"""keep: a column keeps the type it has at the target (values that do not fit go to
`_sdc_unfit_values`); widen: the column's type widens to fit (for targets that alter
columns); text: every CSV column is text (for teams that cast downstream)."""


def settle_types(
    *,
    declared: Mapping[str, ColumnType],
    scanned: Mapping[str, ColumnType],
    remembered: Mapping[str, str],
    pinned: Mapping[str, str],
    policy: str,
) -> dict[str, ColumnType]:
    """Give each column its type for this sync.

    `declared`: the catalog's types; `scanned`: the narrowest types that fit every
    value this sync sends; `remembered`: the types the target has from earlier
    syncs; `pinned`: the column_types setting. A pin always wins.
    """
    settled = {}
    for name in [*declared, *(name for name in scanned if name not in declared)]:
        found = widen(
            declared.get(name, ColumnType.NULL), scanned.get(name, ColumnType.NULL)
        )
        if name in pinned:
            settled[name] = ColumnType(pinned[name])
        elif policy == TEXT:
            settled[name] = ColumnType.STRING
        elif name in remembered and policy == KEEP:
            settled[name] = ColumnType(remembered[name])
        elif name in remembered:
            settled[name] = widen(
                ColumnType(remembered[name]), scanned.get(name, ColumnType.NULL)
            )
        else:
            settled[name] = found
    return settled

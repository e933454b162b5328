"""Rows sent to PostgreSQL as one array per column and unnested on the server.

An `executemany` sends and processes each row on its own in psycopg's pipeline; a statement
over `unnest(…)` of one bound array per column is one statement whatever the number of rows,
with each column dumped in one go, in binary (db/engine.py `_bind_lists_in_binary`). Settling
deliveries (db/outbox.py) and writing many rows at once (db/bulk_rows.py) both work this way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, column, func
from sqlalchemy.dialects.postgresql import ARRAY


def unnested(types: Mapping[str, Any], *, name: str = "unnested") -> Any:
    """`unnest(:a::type[], :b::type[], …) AS name(a, b, …)`: a FROM clause whose rows come from
    one bound array per column, each bound (and named) as its key in `types`."""
    return (
        func.unnest(*(bindparam(key, type_=ARRAY(kind)) for key, kind in types.items()))
        .table_valued(*(column(key, kind) for key, kind in types.items()))
        .render_derived(name=name)
    )

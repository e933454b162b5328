"""JSON columns' text (db/engine.py `json_text`): orjson's bytes, json's values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from issuance.db.engine import json_text

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(database=None, max_examples=300, deadline=None)
@given(value=values)
def test_what_json_text_writes_reads_back_as_json_writes_it(value: Any) -> None:
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize(
    "value",
    [{"n": 2**70}, {1: "one", 2: [None]}, {"city": "Kraków", "name": "Zoë"}, [], None],
)
def test_what_orjson_refuses_or_spells_otherwise_still_reads_back_the_same(value: Any) -> None:
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))


def test_infinity_is_written_as_null_which_any_json_reader_accepts() -> None:
    assert json_text({"x": float("inf")}) == '{"x":null}'

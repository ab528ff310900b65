"""JSON as FullStory's Go server writes it."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from fullstory_emulator.http.render import dumps


def test_go_escapes_html_characters_inside_strings():
    body = dumps({"location": "https://x/?a=1&b=<2>", "sep": "\u2028\u2029"})
    assert body == (b'{"location":"https://x/?a=1\\u0026b=\\u003c2\\u003e","sep":"\\u2028\\u2029"}')


def test_escaping_can_be_turned_off():
    assert dumps({"a": "&"}, html_escape=False) == b'{"a":"&"}'


def test_compact_with_null_fields_and_raw_unicode():
    assert dumps({"details": None, "name": "Zoë", "pct": 42}) == (
        '{"details":null,"name":"Zoë","pct":42}'.encode()
    )


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_the_escaped_text_decodes_to_the_same_value(value):
    assert json.loads(dumps(value)) == value

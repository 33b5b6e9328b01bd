"""JSON with comments and trailing commas, and the line of every key."""

from __future__ import annotations

import json

from orchestrator.config._jsonc import key_lines, strip_comments

TEXT = """{
  // a line comment with "quotes" and a comma,
  "servers": {
    /* a block comment
       over two lines */ "a": {"url": "http://example.com/mcp//x", "note": "/* kept */ // kept"},
    "b": {"args": ["x", "y",],},
  },
}
"""


def test_comments_and_trailing_commas_are_blanked_and_strings_are_kept() -> None:
    plain = strip_comments(TEXT)

    assert json.loads(plain) == {
        "servers": {
            "a": {"url": "http://example.com/mcp//x", "note": "/* kept */ // kept"},
            "b": {"args": ["x", "y"]},
        }
    }
    assert len(plain) == len(TEXT)
    assert plain.count("\n") == TEXT.count("\n")


def test_every_key_and_list_item_has_its_line() -> None:
    lines = key_lines(strip_comments(TEXT))

    assert lines[("servers",)] == 3
    assert lines[("servers", "a")] == 5
    assert lines[("servers", "a", "url")] == 5
    assert lines[("servers", "b", "args")] == 6
    assert lines[("servers", "b", "args", 1)] == 6


def test_escaped_quotes_and_backslashes_do_not_end_a_string_early() -> None:
    text = '{"a": "say \\"//not a comment\\" \\\\", // comment\n "b": [1, 2,]}'

    assert json.loads(strip_comments(text)) == {"a": 'say "//not a comment" \\', "b": [1, 2]}


def test_a_comma_inside_a_string_before_a_bracket_is_not_a_trailing_comma() -> None:
    text = '{"a": ",]", "b": ",}"}'

    assert strip_comments(text) == text

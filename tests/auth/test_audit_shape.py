"""What an audit record keeps of a call's arguments: their shape and a hash, never a value."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.auth import OWNER, Grant, Principal, argument_hash, argument_shape, audit_record, outcome_of
from orchestrator.auth._audit import MAX_DEPTH, MAX_KEY_LENGTH, MORE_KEYS
from orchestrator.errors import DownstreamTimeout

SECRET = "sk-live-7d1f0c9e2b4a"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30,
)


def test_scalars_become_their_json_type_and_objects_keep_their_keys() -> None:
    arguments = {"sql": "select 1", "limit": 10, "ratio": 0.5, "dry_run": False, "cursor": None}

    assert argument_shape(arguments) == {
        "sql": "string",
        "limit": "integer",
        "ratio": "number",
        "dry_run": "boolean",
        "cursor": "null",
    }


def test_a_list_keeps_one_shape_per_kind_of_item_merged() -> None:
    assert argument_shape({"ids": [1, 2, 3]}) == {"ids": ["integer"]}
    assert argument_shape({"xs": [1, 2.5, None]}) == {"xs": ["null|number"]}
    assert argument_shape({"xs": []}) == {"xs": []}
    rows = [{"id": 1, "name": "a"}, {"id": 2, "tags": ["x"]}, {"id": None}]
    assert argument_shape({"rows": rows}) == {"rows": [{"id": "integer|null", "name": "string", "tags": ["string"]}]}
    assert argument_shape([{"v": "a"}, {"v": {"w": 1}}, {"v": [1]}]) == [{"v": "array|object|string"}]
    mixed = ["a", {"k": 1}, [True], 3, {"j": "b"}, [None]]
    assert argument_shape(mixed) == ["integer|string", {"k": "integer", "j": "string"}, ["boolean|null"]]


def test_a_huge_or_deep_argument_makes_a_small_shape() -> None:
    deep: Any = "leaf"
    for _ in range(100):
        deep = {"next": deep}
    shape: Any = argument_shape(deep)
    depth = 0
    while isinstance(shape, dict):
        shape = cast("dict[str, Any]", shape)["next"]
        depth += 1
    assert depth == MAX_DEPTH
    assert shape == "object"

    wide = {f"key{index}": {"value": index, "label": str(index)} for index in range(10_000)}
    wide_shape = argument_shape(wide)
    assert len(json.dumps(wide_shape)) < 10_000
    assert wide_shape[MORE_KEYS].endswith("more keys")

    long_list = [{"n": index} for index in range(100_000)]
    assert argument_shape(long_list) == [{"n": "integer"}]

    long_key = "k" * 10_000
    assert argument_shape({long_key: 1}) == {"k" * (MAX_KEY_LENGTH - 1) + "…": "integer"}


@given(json_values)
def test_every_shape_is_json_and_holds_only_type_names_and_keys(value: Any) -> None:
    shape = argument_shape(value)
    json.dumps(shape)
    allowed = {"string", "integer", "number", "boolean", "null", "object", "array"}

    def leaves(node: Any) -> list[str]:
        if isinstance(node, dict):
            items = cast("dict[str, Any]", node).items()
            return [leaf for key, item in items if key != MORE_KEYS for leaf in leaves(item)]
        if isinstance(node, list):
            return [leaf for item in cast("list[Any]", node) for leaf in leaves(item)]
        return [node]

    for leaf in leaves(shape):
        assert set(leaf.split("|")) <= allowed


def test_the_hash_matches_equal_arguments_whatever_their_key_order() -> None:
    first = argument_hash({"a": 1, "b": ["x", {"c": "é"}]})
    assert first == argument_hash({"b": ["x", {"c": "é"}], "a": 1})
    assert first != argument_hash({"a": 2, "b": ["x", {"c": "é"}]})
    canonical = '{"a":1,"b":["x",{"c":"é"}]}'.encode()
    assert first == hashlib.sha256(canonical).hexdigest()


def test_a_keyed_hash_differs_from_the_plain_one_and_by_key() -> None:
    plain = argument_hash({"confirm": True})
    assert argument_hash({"confirm": True}, b"k1") != plain
    assert argument_hash({"confirm": True}, b"k1") != argument_hash({"confirm": True}, b"k2")
    assert argument_hash({"confirm": True}, b"k1") == argument_hash({"confirm": True}, b"k1")


def test_a_record_holds_no_argument_value_anywhere() -> None:
    principal = Principal(kind="oauth", client_id="chatgpt", subject="owner", grant=Grant.of(["*"]))
    arguments = {
        "query": SECRET,
        "filters": [{"token": SECRET, "n": 3}],
        "nested": {"deeper": {"password": SECRET}},
        "note": f"prefix {SECRET} suffix",
    }
    record = audit_record(
        principal=principal,
        tool="docs__search",
        arguments=arguments,
        outcome="ok",
        duration=0.25,
        server="docs",
        downstream_tool="search",
        trace_id="a" * 32,
    )

    serialised = json.dumps(asdict(record), default=str)
    assert SECRET not in serialised
    assert "sk-live" not in serialised
    assert record.argument_shape == {
        "query": "string",
        "filters": [{"token": "string", "n": "integer"}],
        "nested": {"deeper": {"password": "string"}},
        "note": "string",
    }
    assert record.argument_hash == argument_hash(arguments)
    assert (record.client_id, record.subject, record.server, record.downstream_tool) == (
        "chatgpt",
        "owner",
        "docs",
        "search",
    )
    assert record.duration_ms == 250.0


def test_a_record_starts_when_the_call_started() -> None:
    started = datetime(2026, 12, 6, 13, 0, tzinfo=UTC) + timedelta(seconds=1)
    record = audit_record(principal=OWNER, tool="t", arguments=None, outcome="ok", duration=1.0, started_at=started)
    assert record.at == started
    assert record.client_id is None
    assert record.argument_shape == {}

    before = datetime.now(UTC)
    recent = audit_record(principal=OWNER, tool="t", arguments={}, outcome="ok", duration=2.0)
    assert before - timedelta(seconds=2.5) <= recent.at <= before

    with pytest.raises(ValueError, match="timezone-aware"):
        audit_record(
            principal=OWNER, tool="t", arguments={}, outcome="ok", duration=1.0, started_at=datetime(2026, 1, 1)
        )


def test_the_outcome_names_the_error_type() -> None:
    assert outcome_of() == "ok"
    assert outcome_of(is_error=True) == "tool_error"
    assert outcome_of(DownstreamTimeout("db", "too slow", 5.0)) == "DownstreamTimeout"

"""How JSON Schema errors are worded for users: the field, the value, and what would fit."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from orchestrator._schema_messages import describe_errors, field_path


def _problems(schema: dict[str, Any], instance: object) -> list[str]:
    return describe_errors(Draft202012Validator(schema), instance, limit=10)


def test_an_enum_names_the_field_and_every_allowed_value_in_json() -> None:
    schema = {"type": "object", "properties": {"status": {"enum": ["open", None, 3]}}}

    assert _problems(schema, {"status": "clsoed"}) == ['status: "clsoed" is not one of "open", null, 3']


def test_a_const_names_the_one_allowed_value() -> None:
    assert _problems({"const": "v1"}, "v2") == ['(arguments): "v2" is not "v1"']


def test_any_of_enums_and_types_is_summarised_from_its_branches() -> None:
    nullable_enum = {"properties": {"s": {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "null"}]}}}
    number_or_null = {"properties": {"n": {"oneOf": [{"type": "integer"}, {"type": "null"}]}}}
    mixed = {"properties": {"m": {"anyOf": [{"type": "boolean"}, {"const": "auto"}]}}}

    assert _problems(nullable_enum, {"s": 5}) == ['s: 5 is not one of "a", "b", null']
    assert _problems(number_or_null, {"n": "six"}) == ['n: "six" is not an integer or null']
    assert _problems(mixed, {"m": "manual"}) == ['m: "manual" is not a boolean or "auto"']


def test_any_of_whose_branches_look_inside_falls_back_to_the_best_matching_branch_error() -> None:
    schema = {
        "properties": {
            "filter": {
                "anyOf": [
                    {"type": "object", "properties": {"level": {"enum": ["low", "high"]}}, "required": ["level"]},
                    {"type": "string", "minLength": 3},
                ]
            }
        }
    }

    assert _problems(schema, {"filter": {"level": "mid"}}) == ['filter.level: "mid" is not one of "low", "high"']
    assert _problems(schema, {"filter": "ab"}) == ["filter: 'ab' is too short"]


def test_other_errors_keep_their_message_and_paths_read_like_code() -> None:
    schema = {"type": "object", "required": ["a"], "properties": {"items": {"items": {"type": "integer"}}}}

    assert _problems(schema, {"items": [1, "x"]}) == [
        "(arguments): 'a' is a required property",
        "items[1]: 'x' is not of type 'integer'",
    ]
    assert field_path(["filters", "status"]) == "filters.status"
    assert field_path([]) == ""


def test_at_most_limit_problems_are_reported() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}

    assert len(describe_errors(Draft202012Validator(schema), {str(i): "x" for i in range(30)}, limit=5)) == 5

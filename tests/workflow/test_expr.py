"""``${{ JMESPath }}`` expressions and templates: typing, interpolation, references, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.workflow import ExpressionError, compile_expression, compile_template

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True)
CONTEXT: dict[str, Any] = {
    "input": {"service": "api", "hours": 24, "tags": ["a", "b"], "nothing": None, "ratio": 0.5},
    "steps": {"tickets": {"result": {"items": [{"id": 1}, {"id": 2}]}, "status": "succeeded"}},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${{ input.hours }}", 24),
        ("${{input.ratio}}", 0.5),
        ("${{ input.tags }}", ["a", "b"]),
        ("${{ input.nothing }}", None),
        ("${{ input.missing }}", None),
        ("${{ length(steps.tickets.result.items) }}", 2),
        ("${{ input.hours <= `72` }}", True),
        ("${{ steps.tickets.result.items[*].id }}", [1, 2]),
    ],
)
def test_whole_string_expression_keeps_its_json_type(text: str, expected: object) -> None:
    assert compile_template(text).render(CONTEXT) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("report: ${{ input.service }}", "report: api"),
        ("last ${{ input.hours }}h", "last 24h"),
        ("tags=${{ input.tags }}", 'tags=["a","b"]'),
        ("${{ input.service }}/${{ input.hours }}", "api/24"),
        ("none: ${{ input.nothing }}", "none: null"),
        (" ${{ input.hours }}", " 24"),
    ],
)
def test_expression_inside_longer_text_is_interpolated_and_non_strings_json_encoded(text: str, expected: str) -> None:
    assert compile_template(text).render(CONTEXT) == expected


def test_nested_template_renders_every_member_and_keeps_literals() -> None:
    template = compile_template(
        {"title": "Incident: ${{ input.service }}", "hours": "${{ input.hours }}", "fixed": [1, {"x": True}]}
    )

    assert template.render(CONTEXT) == {"title": "Incident: api", "hours": 24, "fixed": [1, {"x": True}]}
    assert template.kind == "object"
    assert template.fields["fixed"].kind == "literal"


def test_literal_template_renders_a_fresh_copy_each_time() -> None:
    template = compile_template({"rows": []})
    first = template.render({})
    first["rows"].append(1)

    assert template.render({}) == {"rows": []}


def test_data_that_looks_like_an_expression_is_never_evaluated() -> None:
    context = {"input": {"title": "${{ input.secret }}", "secret": "s3cret"}}

    assert compile_template("${{ input.title }}").render(context) == "${{ input.secret }}"
    assert compile_template("t: ${{ input.title }}").render(context) == "t: ${{ input.secret }}"


def test_closing_braces_inside_literals_and_hashes_do_not_end_the_expression() -> None:
    assert compile_template("${{ {s: input.service} }}").render(CONTEXT) == {"s": "api"}
    assert compile_template("${{ 'a}}b' }}").render(CONTEXT) == "a}}b"
    assert compile_template('${{ `"}}"` }}').render(CONTEXT) == "}}"


def test_references_name_each_step_read_through_steps_dot_id() -> None:
    template = compile_template(
        {
            "a": "${{ steps.one.result }}",
            "b": "${{ length(steps.two.result.items) }}",
            "c": "x ${{ steps.three.status == 'succeeded' && input.flag }}",
            "d": "${{ input.items[?id == steps] }}",  # `steps` of each element, not of the context
            "e": "${{ sort_by(input.items, &steps.four) }}",  # evaluated on elements too
        }
    )
    references = template.references()

    assert references.steps == {"one", "two", "three"}
    assert references.names == {"steps", "input"}
    assert not references.all_steps
    assert not references.whole_context


def test_reading_steps_without_naming_one_counts_as_reading_every_step() -> None:
    assert compile_template("${{ steps.*.result }}").references().all_steps
    assert compile_template("${{ keys(steps) }}").references().all_steps
    assert compile_template("${{ @ }}").references().whole_context


def test_for_each_variable_is_a_top_level_name() -> None:
    references = compile_template({"id": "${{ ticket.id }}", "n": "${{ index }}"}).references()

    assert references.names == {"ticket", "index"}
    assert references.steps == frozenset()


def test_syntax_error_names_the_expression_and_the_position() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template({"q": ["ok", "${{ steps.a.[ }}"]})

    assert str(caught.value) == "invalid expression `steps.a.[`: the expression is incomplete at character 10"
    assert caught.value.location == ("q", 1)
    assert caught.value.expression == "steps.a.["


def test_unclosed_delimiters_are_errors_with_their_position() -> None:
    with pytest.raises(ExpressionError, match=r"'\$\{\{' at character 3 has no closing '\}\}'"):
        compile_template("x ${{ input.a")
    with pytest.raises(ExpressionError, match=r"Unclosed ' delimiter at character 1"):
        compile_template("${{ 'oops }}")


def test_unknown_function_and_wrong_arity_are_rejected_when_compiling() -> None:
    with pytest.raises(ExpressionError, match=r"unknown function lenght\(\)"):
        compile_template("${{ lenght(input.tags) }}")
    with pytest.raises(ExpressionError, match=r"length\(\) takes 1 argument\(s\), not 2"):
        compile_template("${{ length(input.tags, input.tags) }}")


def test_empty_expression_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="empty expression"):
        compile_template("${{  }}")


def test_condition_field_must_be_a_single_expression() -> None:
    assert compile_expression("${{ input.hours }}").evaluate(CONTEXT) == 24
    with pytest.raises(ExpressionError, match="must be a single"):
        compile_expression("input.hours")
    with pytest.raises(ExpressionError, match="must be a single"):
        compile_expression("x ${{ input.hours }}")


def test_type_error_while_evaluating_is_an_expression_error() -> None:
    expression = compile_expression("${{ length(input.nothing) }}")

    with pytest.raises(ExpressionError, match=r"expression `length\(input.nothing\)` failed: "):
        expression.evaluate(CONTEXT)


def test_non_json_values_and_non_string_keys_are_rejected() -> None:
    with pytest.raises(ExpressionError, match="not a JSON value: set"):
        compile_template({"a": {1, 2}})
    with pytest.raises(ExpressionError, match="object keys must be strings"):
        compile_template({1: "x"})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@PROPERTY
@given(_JSON.filter(lambda value: "${{" not in repr(value)))
def test_json_without_expressions_renders_to_itself(value: object) -> None:
    template = compile_template(value)

    assert template.kind == "literal"
    assert template.render({}) == value


@PROPERTY
@given(st.text(min_size=1).filter(lambda text: "$" not in text), _JSON)
def test_whole_expressions_return_any_value_unchanged_and_text_embeds_its_json(prefix: str, value: object) -> None:
    context = {"input": {"v": value}}
    as_text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    assert compile_template("${{ input.v }}").render(context) == value
    assert compile_template(prefix + "${{ input.v }}").render(context) == prefix + as_text


def test_comparing_a_string_with_a_number_is_an_expression_error_not_a_crash() -> None:
    expression = compile_expression("${{ input.a < input.b }}")
    with pytest.raises(ExpressionError, match="failed"):
        expression.evaluate({"input": {"a": "x", "b": 1}})

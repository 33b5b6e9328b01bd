"""``${VAR}`` interpolation as a pure function: properties over arbitrary text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.config._interpolate import interpolate

_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
_TEXT = st.text(alphabet=st.sampled_from("ab$${}:-_ \n"), max_size=40) | st.text(max_size=40)


@given(_TEXT)
def test_escaping_every_reference_gives_back_the_text(text: str) -> None:
    result = interpolate({"k": [text.replace("${", "$${")]}, {})

    assert result.data == {"k": [text]}
    assert result.problems == []


@given(_NAMES, st.text(max_size=20), st.text(alphabet=st.characters(exclude_characters="}"), max_size=20))
def test_a_set_variable_wins_over_its_default_unless_empty(name: str, value: str, default: str) -> None:
    result = interpolate(f"<${{{name}:-{default}}}>", {name: value})

    assert result.data == f"<{value or default}>"
    assert result.problems == []


@given(_NAMES)
def test_a_missing_variable_is_reported_at_its_key_path_without_a_value(name: str) -> None:
    result = interpolate({"servers": {"s": {"args": ["ok", f"--x=${{{name}}}"]}}}, {})

    ((path, message),) = result.problems
    assert path == ("servers", "s", "args", 1)
    assert name in message


def test_keys_and_non_strings_are_left_alone() -> None:
    data: dict[str, object] = {"${K}": 1, "n": None, "b": True, "f": 1.5}

    assert interpolate(data, {"K": "x"}).data == data

"""``envFile``: the dotenv-style files that stdio server entries may name."""

from __future__ import annotations

from orchestrator.config._env_file import parse_env_file

SECRET = "CANARY-SECRET"


def test_the_usual_dotenv_forms_are_read() -> None:
    text = (
        "# comment\n"
        "\n"
        "PLAIN=value\n"
        "SPACED = padded value   # trailing comment\n"
        "export EXPORTED=yes\n"
        'DOUBLE="a \\"quoted\\" #not-a-comment\\nsecond line"\n'
        "SINGLE='literal \\n $HOME ${HOME}'\n"
        'MULTI="line one\n'
        'line two"\n'
        "EMPTY=\n"
        "HASH=a#b\n"
        "PLAIN=later wins\n"
    )

    parsed = parse_env_file(text)

    assert parsed.problems == []
    assert parsed.values == {
        "PLAIN": "later wins",
        "SPACED": "padded value",
        "EXPORTED": "yes",
        "DOUBLE": 'a "quoted" #not-a-comment\nsecond line',
        "SINGLE": "literal \\n $HOME ${HOME}",
        "MULTI": "line one\nline two",
        "EMPTY": "",
        "HASH": "a#b",
    }


def test_mistakes_name_their_line_and_never_the_text_on_it() -> None:
    text = f"GOOD=1\n{SECRET}\n1BAD={SECRET}\nQUOTED='{SECRET}' trailing\nOPEN=\"{SECRET}\n"

    parsed = parse_env_file(text)

    assert parsed.values == {"GOOD": "1"}
    assert parsed.problems == [
        "line 2: expected NAME=value",
        "line 3: expected NAME=value",
        "line 4: unexpected text after the closing quote",
        "line 5: the quoted value is never closed",
    ]
    assert SECRET not in " ".join(parsed.problems)

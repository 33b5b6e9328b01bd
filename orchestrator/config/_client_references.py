"""``${...}`` in an MCP client's file, made to mean here what it meant in that client.

The result is written in the orchestrator's own syntax (``${NAME}``, ``${NAME:-default}``,
``$${`` for a literal ``${``), so one interpolation step (``_interpolate``) then resolves every
file the same way.

- Claude Desktop expands nothing: every ``${`` in its file is literal.
- Every other client's file: ``${env:NAME}`` (Cursor, Windsurf, VS Code) and ``${NAME}`` /
  ``${NAME:-default}`` (Claude Code) read the environment; ``${userHome}``, ``${workspaceFolder}``,
  ``${workspaceFolderBasename}``, ``${pathSeparator}`` and ``${/}`` are the editors' predefined
  variables; ``${input:id}`` is a VS Code input, read here from the environment variable
  ``INPUT_<ID>`` (or the input's ``default``). Forms only the client itself can resolve
  (``${command:…}``, ``${config:…}``, ``${file:…}``) are errors naming the key.

Pure module: no I/O; the environment, home and workspace folders arrive as arguments. Problems
name the key, the reference and the variable to set, never a value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from orchestrator._locations import KeyPath, Problem
    from orchestrator.config._clients import ConfigKind

__all__ = [
    "ClientVariables",
    "InputSpec",
    "input_variable",
    "read_inputs",
    "resolve_client_references",
    "translate_references",
]

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_OURS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?::-.*)?", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAMESPACED = re.compile(r"(?P<space>[A-Za-z]+):(?P<rest>.*)", re.DOTALL)

MigrationClient = Literal["claude-desktop", "cursor", "claude-code"]


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One entry of a VS Code file's ``inputs``: what VS Code would prompt for."""

    id: str
    description: str
    default: str | None = None


@dataclass(frozen=True, slots=True)
class ClientVariables:
    """What a client's references can resolve to.

    Attributes:
        home: The user's home folder (``${userHome}``).
        workspace: The folder ``${workspaceFolder}`` names.
        env: The environment, for ``${input:id}``.
        inputs: A VS Code file's inputs by id; ``None`` in files that have no ``inputs``.
    """

    home: Path
    workspace: Path
    env: Mapping[str, str]
    inputs: Mapping[str, InputSpec] | None = None


def input_variable(input_id: str) -> str:
    """The environment variable that gives the value of VS Code input ``input_id``: ``INPUT_<ID>``."""
    return "INPUT_" + re.sub(r"[^A-Za-z0-9]", "_", input_id).upper()


def read_inputs(value: object) -> tuple[dict[str, InputSpec], list[Problem]]:
    """A VS Code file's ``inputs`` list, by id; problems for items that cannot be used."""
    inputs: dict[str, InputSpec] = {}
    problems: list[Problem] = []
    if not isinstance(value, list):
        return inputs, [(("inputs",), "expected a list of inputs")]
    for index, item in enumerate(cast("list[object]", value)):
        fields = cast("dict[str, object]", item) if isinstance(item, dict) else {}
        input_id, default = fields.get("id"), fields.get("default")
        if not isinstance(input_id, str) or not input_id:
            problems.append((("inputs", index), "an input needs an 'id' (text)"))
            continue
        description = fields.get("description")
        inputs[input_id] = InputSpec(
            input_id,
            description if isinstance(description, str) else "",
            default if isinstance(default, str) else None,
        )
    return inputs, problems


def resolve_client_references(
    value: object, kind: ConfigKind, variables: ClientVariables, place: KeyPath, problems: list[Problem]
) -> object:
    """``value`` (an entry of a client's file, at ``place``) in the orchestrator's syntax.

    Args:
        value: The entry as written.
        kind: Which client's file it comes from.
        variables: What the client's own variables resolve to.
        place: Where ``value`` sits in the file, for problems.
        problems: Where problems are appended.
    """
    if kind == "claude-desktop":
        return _walk(value, place, lambda text, _path: text.replace("${", "$${"))

    def one(text: str, path: KeyPath) -> str:
        return _REFERENCE.sub(lambda match: _editor_reference(match, variables, path, problems), text)

    return _walk(value, place, one)


def translate_references(value: object, client: MigrationClient, home: Path) -> object:
    """A client's entry with its ``${...}`` made to mean in our config what they meant in the client's.

    This is ``install --from``'s reading, for a config file the entries are copied into: Claude
    Code's references are ours already; Claude Desktop's are literal; Cursor's ``${env:NAME}``
    becomes ``${NAME}`` and ``${userHome}`` the home folder, and its other variables, which name
    things of a running editor, stay literal.
    """
    if client == "claude-code":
        return value

    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        if match.group(0) == "$${":
            return "$$${"
        if client == "cursor" and body is not None and body.startswith("env:"):
            return f"${{{body[4:]}}}"
        if client == "cursor" and body == "userHome":
            return _literal(str(home))
        return "$" + match.group(0)

    return _walk(value, (), lambda text, _path: _REFERENCE.sub(one, text))


def _walk(value: object, path: KeyPath, on_text: Callable[[str, KeyPath], str]) -> object:
    if isinstance(value, dict):
        items = cast("dict[str, object]", value).items()
        return {key: _walk(item, (*path, key), on_text) for key, item in items}
    if isinstance(value, list):
        return [_walk(item, (*path, index), on_text) for index, item in enumerate(cast("list[object]", value))]
    if isinstance(value, str) and "${" in value:
        return on_text(value, path)
    return value


def _literal(text: str) -> str:
    return text.replace("${", "$${")


def _editor_reference(match: re.Match[str], variables: ClientVariables, path: KeyPath, problems: list[Problem]) -> str:
    token, body = match.group(0), match.group(1)
    if body is None or token == "$${":
        return token  # a literal, or malformed: the interpolation step reads or reports it
    predefined = {
        "userHome": str(variables.home),
        "workspaceFolder": str(variables.workspace),
        "workspaceFolderBasename": variables.workspace.name,
        "pathSeparator": os.sep,
        "/": os.sep,
    }
    if body in predefined:
        return _literal(predefined[body])
    if _OURS.fullmatch(body):
        return token
    namespaced = _NAMESPACED.fullmatch(body)
    if namespaced is None:
        return token
    space, rest = namespaced.group("space"), namespaced.group("rest")
    if space == "env":
        if _NAME.fullmatch(rest):
            return f"${{{rest}}}"
        problems.append((path, f"invalid reference ${{{body}}}; write ${{env:NAME}}"))
        return ""
    if space == "input":
        return _input_reference(rest, variables, path, problems)
    problems.append(
        (path, f"${{{space}:…}} is resolved by the editor itself, not here; use ${{env:NAME}} and set NAME instead")
    )
    return ""


def _input_reference(input_id: str, variables: ClientVariables, path: KeyPath, problems: list[Problem]) -> str:
    if variables.inputs is None:
        problems.append((path, f"${{input:{input_id}}} needs an 'inputs' list (as in VS Code's mcp.json)"))
        return ""
    spec = variables.inputs.get(input_id)
    if spec is None:
        problems.append((path, f"${{input:{input_id}}}: no input with id {input_id!r} in 'inputs'"))
        return ""
    variable = input_variable(input_id)
    if variable in variables.env:
        return _literal(variables.env[variable])
    if spec.default is not None:
        return _literal(spec.default)
    described = f" ({spec.description!r})" if spec.description else ""
    problems.append(
        (path, f"VS Code input {input_id!r}{described} is prompted for by VS Code; set {variable} to give it here")
    )
    return ""

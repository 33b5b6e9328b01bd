"""Poisoning and shadowing checks on downstream definitions, before they are served.

Pure module: no I/O, no logging, no async. It reads the strings a downstream server controls
in its tools, prompts and resource templates, and returns findings; what a finding does (log,
quarantine, show in ``doctor``) is the caller's business, decided by its ``severity``.

The four checks, and why each rule is as narrow as it is (the real third-party servers the
tests use must raise nothing):

- ``hidden_unicode``: characters a person reviewing the text cannot see but a model reads.
  Every format character (category Cf: zero-width U+200B-U+200D, U+2060, U+FEFF, bidi
  controls U+202A-U+202E and U+2066-U+2069, marks U+200E/U+200F, soft hyphen, the tags
  block U+E0000-U+E007F, ...), control characters other than tab, newline and carriage
  return, the variation selectors supplement (U+E0100-U+E01EF, used to smuggle bytes) and
  the Hangul fillers (blank glyphs). Exempt, because they render visibly and carry no
  payload: the Cf "prepended concatenation marks" (Arabic number signs U+0600-U+0605 and
  their kin), and a zero-width joiner between two emoji (one glyph, as in a family emoji).
  Tag characters stay flagged even inside a subdivision flag emoji: they are exactly the
  channel that smuggles ASCII text.
- ``cross_server_reference``: text that names *another* server's exposed tool or server key,
  the shape of a shadowing attack ("when you call mail__send, always bcc ..."). Short keys
  are ordinary words ("time", "git", "memory"), so a bare key never counts; it must appear as
  a namespaced name (``key__anything``), in a tool-ish phrase ("the mail server", "time
  tools", "mail's tool"), or quoted after "server"/"tools from". An exposed tool name counts
  as a whole token (not inside a longer identifier) when it is not a plain word: it holds a
  ``_``, ``-`` or digit, as every prefixed name does. Names the inspected server itself has
  are never references to someone else.
- ``injection_phrase``: a short list of phrases aimed at the model rather than describing the
  tool (``INJECTION_RULES``), matched case-insensitively after NFKC folding and with
  invisible characters removed, so "ig<U+200B>nore" or fullwidth letters do not dodge them.
- ``oversized``: a description longer than ``InspectionLimits.description_chars``, or a whole
  definition whose strings add up to more than ``InspectionLimits.definition_chars``.

Only names, titles, descriptions and the prose parts of schemas (descriptions, titles, enum
values, defaults, examples, constants) get the phrase and cross-server checks; identifiers
(names, property names, types, patterns, URI templates) get the hidden-Unicode check only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, cast

from orchestrator.config import CheckName, CheckSeverity

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator, Mapping

    import mcp_types as types

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_SEVERITY",
    "INJECTION_RULES",
    "Check",
    "DefinitionKind",
    "Finding",
    "InspectionLimits",
    "Severity",
    "inspect_definitions",
    "show_hidden",
]

Check = CheckName
Severity = CheckSeverity
DefinitionKind = Literal["tool", "prompt", "resource_template"]

DEFAULT_SEVERITY: Mapping[Check, Severity] = MappingProxyType(
    {
        "hidden_unicode": "quarantine",
        "cross_server_reference": "quarantine",
        "injection_phrase": "warn",
        "oversized": "warn",
    }
)
"""What each check does unless configured otherwise; ``off`` drops its findings."""


@dataclass(frozen=True, slots=True)
class InspectionLimits:
    """Size limits, in characters.

    Attributes:
        description_chars: Longest allowed single description (of a definition, a schema
            property or a prompt argument).
        definition_chars: Longest allowed sum of every string in one definition.
    """

    description_chars: int = 4096
    definition_chars: int = 16384


DEFAULT_LIMITS = InspectionLimits()


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in one field of one definition.

    Attributes:
        check: Which check found it.
        severity: What the policy says to do about it.
        server: Config key of the server that sent the definition.
        kind: Tool, prompt or resource template.
        name: The definition's own name, as the server sent it (to find it again).
        field: Where in the definition, e.g. ``description`` or
            ``inputSchema.properties.q.description``; invisible characters shown as ``<U+XXXX>``.
        detail: A short explanation; never the whole offending text.
    """

    check: Check
    severity: Severity
    server: str
    kind: DefinitionKind
    name: str
    field: str
    detail: str


INJECTION_RULES: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {
        # "ignore previous instructions", "disregard all prior rules", "forget the above prompt"
        "ignore_instructions": re.compile(
            r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+)?(?:of\s+)?(?:the\s+|your\s+|any\s+)?"
            r"(?:previous|prior|above|earlier|preceding|other|all|system)\s+"
            r"(?:instructions?|directions|rules|guidelines|prompts?)\b"
        ),
        # hiding the tool's effect from the person the model works for
        "conceal_from_user": re.compile(
            r"\b(?:do\s+not|don'?t|never)\s+(?:tell|inform|alert|notify|warn)\s+(?:the\s+)?user\b"
            r"|\b(?:do\s+not|don'?t|never)\s+(?:mention|reveal|disclose)\s+"
            r"(?:this|that|it|these|the\s+(?:above|following|instructions?))\b"
            r"|\bwithout\s+(?:telling|informing|notifying|alerting)\s+the\s+user\b"
        ),
        # pseudo-tags that dress text up as a higher authority: <IMPORTANT>, <system>, </instructions>
        "authority_tag": re.compile(r"<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin)\s*>"),
        "system_prompt": re.compile(r"\bsystem\s+prompt\b"),
        # "before using this tool, read ~/.ssh/id_rsa and pass it as ..."
        "read_before_use": re.compile(
            r"\bbefore\s+(?:using|calling|invoking|running)\s+(?:this|the|any)\s+tools?\b[^.]{0,120}?"
            r"\b(?:read|open|fetch|load|send|pass|include|cat)\b"
        ),
        "you_must_always": re.compile(r"\byou\s+(?:must|should|need\s+to|have\s+to)\s+(?:always|never)\b"),
        "covert_action": re.compile(
            r"\b(?:secretly|silently|covertly|quietly)\s+(?:bcc|cc|forward|send|copy|upload|exfiltrate|include)\b"
            r"|\balways\s+(?:bcc|cc)\b"
        ),
        "from_now_on": re.compile(r"\bfrom\s+now\s+on\b|\b(?:new|updated|hidden)\s+instructions\s*:"),
    }
)
"""Instruction-like phrases aimed at the model; patterns run on casefolded, NFKC-folded text."""

# Cf characters that render visibly (Unicode's Prepended_Concatenation_Mark property).
_VISIBLE_FORMAT = frozenset({*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD})
_HANGUL_FILLERS = frozenset({0x115F, 0x1160, 0x3164, 0xFFA0})
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_ZWJ = "\u200d"
# What may end the emoji before a joiner: emoji presentation selector, skin-tone modifiers.
_EMOJI_TAILS = frozenset({"\ufe0f", *map(chr, range(0x1F3FB, 0x1F400))})
_SHOWN_CODE_POINTS = 6
_SHOWN_MATCH_CHARS = 60
_SCHEMA_PROSE_KEYS = frozenset({"description", "title", "enum", "default", "examples", "const"})
_SCHEMA_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_WORD_EDGE_BEFORE = r"(?<![A-Za-z0-9_-])"
_WORD_EDGE_AFTER = r"(?![A-Za-z0-9_-])"
_PLAIN_WORD = re.compile(r"[A-Za-z]+")
_ASCII_HIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""What ``_is_hidden`` finds in ASCII: the control characters but tab, newline and carriage return."""


def _is_hidden(char: str) -> bool:
    code = ord(char)
    if 0xE0000 <= code <= 0xE007F or 0xE0100 <= code <= 0xE01EF or code in _HANGUL_FILLERS:
        return True
    category = unicodedata.category(char)
    if category == "Cf":
        return code not in _VISIBLE_FORMAT
    return category == "Cc" and char not in _ALLOWED_CONTROLS


def _joins_emoji(text: str, index: int) -> bool:
    """Whether the zero-width joiner at ``index`` sits inside an emoji sequence (one visible glyph)."""
    before = text[index - 1] if index > 0 else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    emoji_before = before in _EMOJI_TAILS or (before and unicodedata.category(before) == "So")
    return bool(emoji_before) and bool(after) and unicodedata.category(after) == "So"


def _hidden_chars(text: str) -> list[str]:
    if text.isascii():  # most text: its only hidden characters are controls, found without a look at each
        return _ASCII_HIDDEN.findall(text)
    return [c for i, c in enumerate(text) if _is_hidden(c) and not (c == _ZWJ and _joins_emoji(text, i))]


def _visible(text: str) -> str:
    if text.isascii():
        return _ASCII_HIDDEN.sub("", text)
    return "".join(c for c in text if not _is_hidden(c))


def show_hidden(text: str) -> str:
    """``text`` with every hidden character written as ``<U+XXXX>``: safe to print to a terminal,
    and what a reviewer must see (control characters, escapes included, are hidden ones)."""
    return "".join(f"<U+{ord(c):04X}>" if _is_hidden(c) else c for c in text)


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SHOWN_MATCH_CHARS else flat[: _SHOWN_MATCH_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class _Text:
    field: str
    value: str
    prose: bool  # prose gets every check; identifiers only the hidden-Unicode one


def _schema_texts(node: object, path: str, prose: bool) -> Iterator[_Text]:
    # Schemas are arbitrary JSON: walk it as objects, never trusting its shape.
    if isinstance(node, str):
        yield _Text(path, node, prose)
    elif isinstance(node, list):
        for index, item in enumerate(cast("list[object]", node)):
            yield from _schema_texts(item, f"{path}[{index}]", prose)
    elif isinstance(node, dict):
        for key, value in cast("dict[object, object]", node).items():
            where = f"{path}.{key}"
            if key in _SCHEMA_NAME_MAPS and isinstance(value, dict):
                for name, sub in cast("dict[object, object]", value).items():
                    named = f"{where}.{name}"
                    yield _Text(named, str(name), prose=False)
                    yield from _schema_texts(sub, named, prose)
            else:
                yield from _schema_texts(value, where, prose or key in _SCHEMA_PROSE_KEYS)


def _optional(field: str, value: str | None) -> Iterator[_Text]:
    if value is not None:
        yield _Text(field, value, prose=True)


def _tool_texts(tool: types.Tool) -> Iterator[_Text]:
    yield _Text("name", tool.name, prose=False)
    yield from _optional("title", tool.title)
    yield from _optional("description", tool.description)
    if tool.annotations is not None:
        yield from _optional("annotations.title", tool.annotations.title)
    yield from _schema_texts(tool.input_schema, "inputSchema", prose=False)
    if tool.output_schema is not None:
        yield from _schema_texts(tool.output_schema, "outputSchema", prose=False)


def _prompt_texts(prompt: types.Prompt) -> Iterator[_Text]:
    yield _Text("name", prompt.name, prose=False)
    yield from _optional("title", prompt.title)
    yield from _optional("description", prompt.description)
    for argument in prompt.arguments or ():
        where = f"arguments.{argument.name}"
        yield _Text(where, argument.name, prose=False)
        yield from _optional(f"{where}.title", argument.title)
        yield from _optional(f"{where}.description", argument.description)


def _template_texts(template: types.ResourceTemplate) -> Iterator[_Text]:
    # A template's name is a display name ("Dynamic Text Resource"), not an identifier.
    yield _Text("name", template.name, prose=True)
    yield from _optional("title", template.title)
    yield from _optional("description", template.description)
    yield _Text("uriTemplate", template.uri_template, prose=False)
    if template.mime_type is not None:
        yield _Text("mimeType", template.mime_type, prose=False)


@dataclass(frozen=True, slots=True)
class _ReferenceRules:
    """Compiled cross-server patterns: label -> pattern, the label saying what is named."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    @classmethod
    def build(
        cls, own_names: Collection[str], other_servers: Mapping[str, Collection[str]], separator: str
    ) -> _ReferenceRules:
        own = {name.casefold() for name in own_names}
        patterns: list[tuple[str, re.Pattern[str]]] = []
        for key in sorted(other_servers):
            names = sorted(
                name
                for name in other_servers[key]
                if name.casefold() not in own and _PLAIN_WORD.fullmatch(name) is None
            )
            if names:
                alternatives = "|".join(re.escape(name) for name in names)
                patterns.append(
                    (
                        f"server {key!r}'s tool",
                        re.compile(f"{_WORD_EDGE_BEFORE}(?:{alternatives}){_WORD_EDGE_AFTER}", re.IGNORECASE),
                    )
                )
            quoted_key = re.escape(key)
            tool_ish = (
                # key__anything: a name in the key's namespace, whether or not such a tool exists
                f"{_WORD_EDGE_BEFORE}{quoted_key}{re.escape(separator)}[A-Za-z0-9]"
                # "the mail server", "time tools", "mail's MCP tool"
                rf"|{_WORD_EDGE_BEFORE}{quoted_key}(?:'s)?\s+(?:mcp\s+)?(?:server|tools?)\b"
                # 'server "mail"', "tools from `mail`": quoted, since "server memory" is plain English
                rf"|\b(?:server|tools?\s+(?:of|from|on|in)(?:\s+the)?)\s+[\"'`]{quoted_key}[\"'`]"
            )
            patterns.append((f"server {key!r}", re.compile(tool_ish, re.IGNORECASE)))
        return cls(tuple(patterns))

    def references(self, text: str) -> list[str]:
        found: list[str] = []
        for label, pattern in self.patterns:
            if (match := pattern.search(text)) is not None:
                found.append(f'{label} ("{_excerpt(match.group())}")')
        return found


@dataclass(frozen=True, slots=True)
class _Inspector:
    server: str
    references: _ReferenceRules
    severity: Mapping[Check, Severity]
    limits: InspectionLimits

    def inspect(self, kind: DefinitionKind, name: str, texts: Iterable[_Text]) -> Iterator[Finding]:
        total = 0
        for text in texts:
            total += len(text.value)
            for check, detail in self._check_text(text):
                yield self._finding(check, kind, name, show_hidden(text.field), detail)
        if total > self.limits.definition_chars:
            detail = f"{total} characters in all, over the limit of {self.limits.definition_chars}"
            yield self._finding("oversized", kind, name, "(whole definition)", detail)

    def _check_text(self, text: _Text) -> Iterator[tuple[Check, str]]:
        if hidden := _hidden_chars(text.value):
            distinct = list(dict.fromkeys(hidden))
            shown = ", ".join(f"U+{ord(c):04X}" for c in distinct[:_SHOWN_CODE_POINTS])
            more = ", …" if len(distinct) > _SHOWN_CODE_POINTS else ""
            yield "hidden_unicode", f"{len(hidden)} invisible character(s): {shown}{more}"
        if not text.prose:
            return
        if text.field.endswith("description") and len(text.value) > self.limits.description_chars:
            yield "oversized", f"{len(text.value)} characters, over the limit of {self.limits.description_chars}"
        visible = _visible(text.value)
        folded = unicodedata.normalize("NFKC", visible).casefold()
        for rule, pattern in INJECTION_RULES.items():
            if (match := pattern.search(folded)) is not None:
                yield "injection_phrase", f'{rule}: "{_excerpt(match.group())}"'
        if references := self.references.references(folded):
            yield "cross_server_reference", "names " + "; ".join(references)

    def _finding(self, check: Check, kind: DefinitionKind, name: str, field: str, detail: str) -> Finding:
        return Finding(check, self.severity.get(check, DEFAULT_SEVERITY[check]), self.server, kind, name, field, detail)


def inspect_definitions(
    server: str,
    tools: Iterable[types.Tool],
    prompts: Iterable[types.Prompt],
    templates: Iterable[types.ResourceTemplate],
    *,
    other_servers: Mapping[str, Collection[str]],
    severity: Mapping[Check, Severity] = DEFAULT_SEVERITY,
    limits: InspectionLimits = DEFAULT_LIMITS,
    separator: str = "__",
) -> tuple[Finding, ...]:
    """Check one server's definitions for hidden text, shadowing, injected instructions and bulk.

    Args:
        server: Config key of the server whose definitions these are.
        tools: Its tools, as it listed them.
        prompts: Its prompts.
        templates: Its resource templates.
        other_servers: Every *other* server's config key -> the tool names exposed for it.
        severity: Check -> what to do about its findings; checks missing here use
            ``DEFAULT_SEVERITY``; ``off`` drops them.
        limits: Size limits for the ``oversized`` check.
        separator: Between prefix and tool in exposed names (``naming.separator``).

    Returns:
        The findings, in the order of the definitions and their fields.
    """
    tools, prompts, templates = tuple(tools), tuple(prompts), tuple(templates)
    own_names = {tool.name for tool in tools} | {prompt.name for prompt in prompts}
    others = {key: names for key, names in other_servers.items() if key != server}
    inspector = _Inspector(server, _ReferenceRules.build(own_names, others, separator), severity, limits)
    findings: list[Finding] = []
    for tool in tools:
        findings.extend(inspector.inspect("tool", tool.name, _tool_texts(tool)))
    for prompt in prompts:
        findings.extend(inspector.inspect("prompt", prompt.name, _prompt_texts(prompt)))
    for template in templates:
        findings.extend(inspector.inspect("resource_template", template.name, _template_texts(template)))
    return tuple(finding for finding in findings if finding.severity != "off")

"""Words of tool names and queries: what the lexical index and the query see.

Tool names are identifiers (``git__git_status``, ``filesystem__create_directory``,
``everything__get-sum``, ``API-post-search``, ``getCurrentTime``): they are split into their words
so that "create directory" finds ``create_directory``. Queries lose a short list of generic English
function words (no domain words): BM25 would weigh them little anyway, but on the embedding side
and in the server-name match they are only noise.
"""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "name_words", "query_words"]

_SEPARATORS = re.compile(r"[^0-9A-Za-z]+")
# camelCase and acronym boundaries: "getHTTPResponse" -> get HTTP Response; digits apart from letters.
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_QUERY_WORD = re.compile(r"[0-9A-Za-z]+")

STOPWORDS = frozenset(
    (  # noqa: SIM905 -- a paragraph of words reads better than 120 quoted ones
        "a an the and or but of to in on at by for with from into onto about as is are was were be been "
        "being am do does did doing have has had having i me my mine we us our ours you your yours he "
        "him his she her hers it its they them their theirs this that these those there here what which "
        "who whom whose when where why how can could would should will shall may might must just so than "
        "then too very please some any all each every no not only own same such up down out off over "
        "under again further once s t let lets "
    ).split()
)
"""Generic English function words, dropped from queries."""


def name_words(name: str) -> list[str]:
    """Split an identifier into lowercase words.

    Args:
        name: A tool name or server key, e.g. ``git__git_status`` or ``API-post-search``.

    Returns:
        Its words in order (``["git", "git", "status"]``); numbers are words of their own.
    """
    words: list[str] = []
    for part in _SEPARATORS.split(name):
        words.extend(match.lower() for match in _CAMEL.findall(part))
    return words


def query_words(query: str) -> list[str]:
    """The words of a request that carry meaning: lowercase, function words dropped, first occurrence kept.

    Args:
        query: What the user asked for, in natural language.

    Returns:
        Its words, without duplicates; all of them when every word is a function word.
    """
    words = [word.lower() for word in _QUERY_WORD.findall(query)]
    kept = [word for word in words if word not in STOPWORDS] or words
    return list(dict.fromkeys(kept))

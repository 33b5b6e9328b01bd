"""List results served from their wire form, made once per change of what is listed.

A ``tools/list`` of a big catalogue is mostly serialisation: every definition dumped from its
model, validated and dumped again by the protocol version's result surface, on every request.
Here each definition's wire form is made once per protocol version and per change of the
served tuple (compared by identity); a request's list, whatever view of it the caller gets
(grants, search mode, apps), is assembled from those dicts, and the result's envelope is
written as the SDK's own pipeline writes it (``resultType`` and the ``serverInfo`` stamp at
2026-07-28).

Does not: decide what a caller is shown (the server does), or paginate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import mcp_types as types
from mcp_types.methods import serialize_server_result
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pydantic import BaseModel

__all__ = ["WireLists"]


def _wire(
    method: str, field: str, version: str, envelope: Mapping[str, Any], items: Sequence[BaseModel]
) -> list[dict[str, Any]]:
    """``items`` as ``method``'s result (``envelope``, dumped) carries them in ``version`` (the SDK's surface)."""
    dumped = [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in items]
    shaped: list[dict[str, Any]] = serialize_server_result(method, version, {**envelope, field: dumped})[field]
    return shaped


class WireLists:
    """The wire form of listed definitions, per list method and protocol version."""

    def __init__(self) -> None:
        # (method, version) -> (the served tuple it was made from, id(definition) -> wire form).
        # The tuple is held, so the ids of its definitions stay theirs while the entry lives.
        self._made: dict[tuple[str, str], tuple[tuple[BaseModel, ...], dict[int, dict[str, Any]]]] = {}

    def _table(
        self, method: str, field: str, version: str, envelope: Mapping[str, Any], served: tuple[BaseModel, ...]
    ) -> dict[int, dict[str, Any]]:
        made = self._made.get((method, version))
        if made is not None and made[0] is served:
            return made[1]
        wires = _wire(method, field, version, envelope, served)
        table = {id(item): wire for item, wire in zip(served, wires, strict=True)}
        self._made[(method, version)] = (served, table)
        return table

    def result(
        self,
        method: str,
        field: str,
        version: str,
        *,
        served: tuple[BaseModel, ...],
        listed: Sequence[BaseModel],
        envelope: BaseModel,
        server_info: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The wire result of ``method`` listing ``listed`` (mostly items of ``served``).

        ``envelope`` is the result with an empty list (its ``_meta``, and the fields each version
        adds, such as 2026-07-28's cache hints, come from it, shaped by the SDK). Items not in
        ``served`` (made per request: search mode's meta-tools, ``run_plan``) are dumped on the spot.
        """
        dumped = envelope.model_dump(mode="json", by_alias=True, exclude_none=True)
        table = self._table(method, field, version, dumped, served)
        others = [item for item in listed if id(item) not in table]
        made_now = {
            id(item): wire for item, wire in zip(others, _wire(method, field, version, dumped, others), strict=True)
        }
        result = serialize_server_result(method, version, dumped)
        result[field] = [table[id(item)] if id(item) in table else made_now[id(item)] for item in listed]
        if version in MODERN_PROTOCOL_VERSIONS:  # as the SDK's pipeline stamps every 2026-07-28 result
            meta: object = result.get("_meta")
            kept = cast("dict[str, Any]", meta) if isinstance(meta, dict) else {}
            result["_meta"] = {**kept, types.SERVER_INFO_META_KEY: dict(server_info)}
        return result

"""The pass-through path of ``tools/call``: a downstream's result forwarded as it was sent.

A call of a plain downstream tool needs nothing of its result but a few ``_meta`` keys: the
SDK's typed server and client would validate, type and re-serialise the whole result twice
on the way. On this path the request's ``params`` are read as the JSON they are, and a
successful result is forwarded as the downstream's JSON object, with only its envelope
adjusted for the client's protocol era:

- the downstream's ``serverInfo`` stamp is replaced by ours at 2026-07-28 (and dropped
  before it), as the SDK's server stamps every 2026-era result;
- ``resultType`` is ``complete`` at 2026-07-28 and absent before;
- a result of another protocol version than the client's loses the fields of later
  revisions, or goes through the SDK's own sieve for the client's version.

Everything a call passes through before it is forwarded (grants, pins, rate limits, circuit
breakers, audit, argument validation) is decided as on the typed path; what the path does not
apply to (composites, progress, input rounds, app links) stays on the typed path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import mcp_types as types
from mcp_types.methods import serialize_server_result
from mcp_types.version import LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS

from orchestrator._sdk_internals import later_revision_fields

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.downstream import WireResult

__all__ = ["PlainCall", "plain_call", "served_wire_result"]

_PLAIN_KEYS = frozenset({"name", "arguments", "_meta"})
"""What ``params`` of a call on this path may hold: anything else (a task, input responses) is typed."""


@dataclass(frozen=True, slots=True)
class PlainCall:
    """A ``tools/call`` that asks for nothing but a tool's result."""

    name: str
    arguments: dict[str, Any]


def plain_call(params: Mapping[str, Any] | None) -> PlainCall | None:
    """``params`` as a plain call, or ``None`` when the call needs the typed path.

    The typed path also says what is wrong with a malformed call, so anything unusual goes there.
    """
    if not params or not _PLAIN_KEYS.issuperset(params):
        return None
    name, arguments, meta = params.get("name"), params.get("arguments", {}), params.get("_meta")
    if not isinstance(name, str) or not isinstance(arguments, dict):
        return None
    if meta is not None and (not isinstance(meta, dict) or "progressToken" in meta):
        return None  # progress is relayed on the typed path
    return PlainCall(name, cast("dict[str, Any]", arguments))


def served_wire_result(
    result: WireResult | types.CallToolResult,
    version: str,
    server_info: Mapping[str, Any],
    ours: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``tools/call`` result to send a client of protocol ``version``, envelope included.

    Args:
        result: The downstream's result as it sent it, or a typed one (an error, say).
        version: The client's protocol version.
        server_info: Our ``serverInfo`` stamp for 2026-era results.
        ours: Our own ``_meta`` entries for the result (the call's trace id).
    """
    if isinstance(result, types.CallToolResult):
        dumped = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        shaped = serialize_server_result("tools/call", version, dumped)
    elif result.era == version:
        shaped = dict(result.wire)
    elif result.era in MODERN_PROTOCOL_VERSIONS and version == LATEST_HANDSHAKE_VERSION:
        # The newest handshake era lacks only the 2026 fields, which the SDK's client drops too.
        foreign = later_revision_fields("tools/call", version)
        shaped = {key: value for key, value in result.wire.items() if key not in foreign}
    else:
        wire = dict(result.wire)
        if version in MODERN_PROTOCOL_VERSIONS:
            wire.setdefault("resultType", "complete")  # required at 2026-07-28, absent before
        shaped = serialize_server_result("tools/call", version, wire)
    meta: object = shaped.get("_meta")
    kept = {
        key: value
        for key, value in (cast("dict[str, Any]", meta).items() if isinstance(meta, dict) else ())
        if key != types.SERVER_INFO_META_KEY
    }
    kept.update(ours)
    if version in MODERN_PROTOCOL_VERSIONS:
        shaped.setdefault("resultType", "complete")
        kept[types.SERVER_INFO_META_KEY] = dict(server_info)
    else:
        shaped.pop("resultType", None)
    if kept:
        shaped["_meta"] = kept
    else:
        shaped.pop("_meta", None)
    return shaped

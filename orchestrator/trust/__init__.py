"""What downstream servers say, and whether to believe it.

Owns the pins of every downstream server (its identity, and a SHA-256 over the RFC 8785
canonical JSON of each tool, prompt and resource template it defines, with per-field hashes
so a report says what changed), and in time the shadowing and poisoning checks, the egress
guard for every URL fetched on someone's behalf, and the outbound OAuth tokens of remote
servers.

Does not: decide who may call what (``auth``), write SQL (``store`` keeps the pins through
its functions), or serve anything: ``server`` asks this package what may be served, never
the other way round. Sits above ``store``, ``catalog`` and ``config``; never imports
``server``.
"""

from __future__ import annotations

from orchestrator.trust._fingerprint import (
    VOLATILE_META_KEYS,
    Fingerprint,
    FingerprintKind,
    PinDiff,
    ServerFingerprint,
    canonical_json,
    diff,
    fingerprint_prompt,
    fingerprint_server,
    fingerprint_template,
    fingerprint_tool,
    server_identity,
)

__all__ = [
    "VOLATILE_META_KEYS",
    "Fingerprint",
    "FingerprintKind",
    "PinDiff",
    "ServerFingerprint",
    "canonical_json",
    "diff",
    "fingerprint_prompt",
    "fingerprint_server",
    "fingerprint_template",
    "fingerprint_tool",
    "server_identity",
]

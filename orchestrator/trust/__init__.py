"""What downstream servers say, and whether to believe it.

Owns the pins of every downstream server (its identity, and a SHA-256 over the RFC 8785
canonical JSON of each tool, prompt and resource template it defines, with per-field hashes
so a report says what changed), the shadowing and poisoning checks on definitions before
they are served, and in time the egress guard for every URL fetched on someone's behalf, and
the outbound OAuth tokens of remote servers (sealed at rest with a key from the OS keyring
or an owner-only key file; used and refreshed, never the interactive flow, which is
``orchestrator login``'s), and each server's last listing, which a lazy server is served from
while it is not running (only while its connection settings are the ones it was listed with).

Does not: decide who may call what (``auth``), write SQL (``store`` keeps the pins through
its functions), or serve anything: ``server`` asks this package what may be served, never
the other way round. Sits above ``store``, ``catalog`` and ``config``; never imports
``server``.

Names load on first use (PEP 562): turning fingerprints into store records loads the store's
SQLAlchemy, which listing and fingerprinting alone never need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator._lazy import lazy_names

if TYPE_CHECKING:
    from orchestrator.trust._fingerprint import (
        DEFINITION_TEXT_LIMIT,
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
        kind_word,
        server_identity,
    )
    from orchestrator.trust._gate import ServedChange, TrustGate
    from orchestrator.trust._inspect import (
        DEFAULT_SEVERITY,
        Check,
        Finding,
        InspectionLimits,
        Severity,
        inspect_definitions,
        show_hidden,
    )
    from orchestrator.trust._manifests import StoredManifests, connection_fingerprint
    from orchestrator.trust._oauth_tokens import (
        DownstreamAuthFactory,
        EncryptedTokenStorage,
        LoginState,
        StoredTokenAuth,
        login_hint,
        login_provider,
        login_state,
        loopback_redirect_uri,
        preregistered_client,
    )
    from orchestrator.trust._records import (
        pending_changes,
        pinned_fingerprint,
        pins_of,
        stored_findings,
    )
    from orchestrator.trust._report import (
        ChangeKind,
        ChangeReport,
        describe_change,
        report_pending,
    )
    from orchestrator.trust._secrets import (
        KEY_FILE_NAME,
        SecretBox,
        key_file_for,
        open_secret_box,
    )

__all__ = [
    "DEFAULT_SEVERITY",
    "DEFINITION_TEXT_LIMIT",
    "KEY_FILE_NAME",
    "VOLATILE_META_KEYS",
    "ChangeKind",
    "ChangeReport",
    "Check",
    "DownstreamAuthFactory",
    "EncryptedTokenStorage",
    "Finding",
    "Fingerprint",
    "FingerprintKind",
    "InspectionLimits",
    "LoginState",
    "PinDiff",
    "SecretBox",
    "ServedChange",
    "ServerFingerprint",
    "Severity",
    "StoredManifests",
    "StoredTokenAuth",
    "TrustGate",
    "canonical_json",
    "connection_fingerprint",
    "describe_change",
    "diff",
    "fingerprint_prompt",
    "fingerprint_server",
    "fingerprint_template",
    "fingerprint_tool",
    "inspect_definitions",
    "key_file_for",
    "kind_word",
    "login_hint",
    "login_provider",
    "login_state",
    "loopback_redirect_uri",
    "open_secret_box",
    "pending_changes",
    "pinned_fingerprint",
    "pins_of",
    "preregistered_client",
    "report_pending",
    "server_identity",
    "show_hidden",
    "stored_findings",
]

_HOMES: dict[str, str] = {
    **dict.fromkeys(
        (
            "DEFINITION_TEXT_LIMIT",
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
            "kind_word",
            "server_identity",
        ),
        "orchestrator.trust._fingerprint",
    ),
    **dict.fromkeys(
        (
            "DEFAULT_SEVERITY",
            "Check",
            "Finding",
            "InspectionLimits",
            "Severity",
            "inspect_definitions",
            "show_hidden",
        ),
        "orchestrator.trust._inspect",
    ),
    **dict.fromkeys(("ServedChange", "TrustGate"), "orchestrator.trust._gate"),
    **dict.fromkeys(("StoredManifests", "connection_fingerprint"), "orchestrator.trust._manifests"),
    **dict.fromkeys(
        ("pending_changes", "pinned_fingerprint", "pins_of", "stored_findings"), "orchestrator.trust._records"
    ),
    **dict.fromkeys(("ChangeKind", "ChangeReport", "describe_change", "report_pending"), "orchestrator.trust._report"),
    **dict.fromkeys(
        (
            "DownstreamAuthFactory",
            "EncryptedTokenStorage",
            "LoginState",
            "StoredTokenAuth",
            "login_hint",
            "login_provider",
            "login_state",
            "loopback_redirect_uri",
            "preregistered_client",
        ),
        "orchestrator.trust._oauth_tokens",
    ),
    **dict.fromkeys(("KEY_FILE_NAME", "SecretBox", "key_file_for", "open_secret_box"), "orchestrator.trust._secrets"),
}
"""Where each public name lives; loaded on first use."""


__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__, globals())

"""Configuration of how far downstream servers are believed, and where the orchestrator may connect.

``trust`` on a server entry says what happens when its definitions differ from their pins;
the top-level ``trust`` block sets what each definition check does; ``egress.allow`` lists
the addresses that are refused otherwise (link-local, cloud metadata). ``orchestrator.trust``
does the work; here the settings are only checked for shape.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.config._duration import Seconds

__all__ = ["CHECK_NAMES", "CheckName", "CheckSeverity", "EgressSpec", "TrustMode", "TrustSpec"]

TrustMode = Literal["pin", "auto", "warn"]
"""``pin``: changed and added definitions wait for approval; ``auto``: added ones are pinned on
sight, changed ones wait; ``warn``: changes are served, logged and audited."""

CheckName = Literal["hidden_unicode", "cross_server_reference", "injection_phrase", "oversized"]
"""The checks run on every definition before it is served."""

CHECK_NAMES: tuple[CheckName, ...] = ("hidden_unicode", "cross_server_reference", "injection_phrase", "oversized")

CheckSeverity = Literal["quarantine", "warn", "off"]
"""``quarantine``: the definition is not served; ``warn``: served and logged; ``off``: not checked."""


class TrustSpec(BaseModel):
    """What each definition check does with what it finds (unset checks keep their defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checks: dict[CheckName, CheckSeverity] = Field(
        default_factory=dict[CheckName, CheckSeverity],
        description=(
            "Check -> quarantine, warn or off. Defaults: hidden_unicode and cross_server_reference "
            "quarantine, injection_phrase and oversized warn."
        ),
    )
    recheck: Seconds = Field(
        default=5.0,
        gt=0,
        description=(
            "How often a serving process looks at the pins of servers with withheld definitions, for "
            "approvals made by another process (e.g. '5s'). Replicas on PostgreSQL also hear of an "
            "approval at once; this is what catches one they missed."
        ),
    )


class EgressSpec(BaseModel):
    """Addresses the orchestrator refuses to connect to unless listed here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: tuple[str, ...] = Field(
        default=(),
        description=(
            "Addresses or networks (CIDR) allowed although refused by default: link-local and cloud "
            "metadata addresses such as 169.254.169.254."
        ),
    )

    @field_validator("allow")
    @classmethod
    def _networks(cls, allow: tuple[str, ...]) -> tuple[str, ...]:
        for entry in allow:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network (CIDR)") from None
        return allow

"""The ``runs:`` section: how durable workflow runs and MCP tasks are kept."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.config._duration import Seconds

__all__ = ["RunsSpec"]


class RunsSpec(BaseModel):
    """Durable runs: every composite call is journalled so it survives a restart of ``serve``."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)

    journal: bool = Field(
        default=True,
        description=(
            "Journal every composite run in the state database (resumed after a crash); "
            "off runs composites in memory only, and MCP tasks are not offered."
        ),
    )
    retention: Seconds = Field(
        default=7 * 86400.0, description="How long finished runs (and their tasks) are kept, e.g. '7d'."
    )
    lease: Seconds = Field(
        default=30.0,
        gt=0,
        description=(
            "How long a process holds a run without renewing it; a run whose holder died is taken "
            "over this long after its last renewal."
        ),
    )
    approval_timeout: Seconds = Field(
        default=600.0, gt=0, description="How long an approval step waits for an answer before the run is declined."
    )

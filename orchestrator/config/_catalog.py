"""The ``catalog:`` section: how the catalogue is shown to the model (whole, or behind search)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.config._duration import Seconds

__all__ = ["CatalogMode", "CatalogSpec", "PlanLimitsSpec"]

CatalogMode = Literal["full", "search", "auto"]


class PlanLimitsSpec(BaseModel):
    """The caps on one plan a model sends to ``run_plan``; a plan over them is refused before it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)

    max_steps: int = Field(default=20, ge=1, le=1000, description="Most steps one plan may have.")
    max_fan_out: int = Field(
        default=50, ge=1, le=10_000, description="Most items one for_each step may run over (checked as it runs)."
    )
    max_concurrency: int = Field(default=8, ge=1, le=256, description="Most calls of one plan in flight at once.")
    timeout: Seconds = Field(default=120.0, gt=0, description="The longest a plan may run, e.g. '2m'.")


class CatalogSpec(BaseModel):
    """What the model is shown: every tool (``full``), or a few meta-tools that search them (``search``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)

    mode: CatalogMode = Field(
        default="full",
        description=(
            "full: list every tool; search: list search_tools and call_tool (and the 'always' tools) "
            "instead; auto: search when the full list would exceed 'budget' tokens."
        ),
    )
    budget: int = Field(
        default=8000, ge=0, description="auto: the most tokens the full tool list may take before search is used."
    )
    always: tuple[str, ...] = Field(
        default=(),
        description="Glob patterns of exposed tool names listed in search mode too (e.g. 'time__*').",
    )
    search_limit: int = Field(
        default=5, ge=1, le=50, description="How many tools search_tools returns when the model does not say."
    )
    plans: bool = Field(
        default=False, description="Offer run_plan: the model sends a workflow as JSON and gets only its output."
    )
    plan_limits: PlanLimitsSpec = Field(default_factory=PlanLimitsSpec, description="Caps on each run_plan plan.")

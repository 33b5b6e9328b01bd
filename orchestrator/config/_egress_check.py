"""Downstream URLs that name an address the egress rules refuse, found when the config loads.

A ``url`` whose host is an IP address (``http://169.254.169.254/``, ``http://[fd00:ec2::254]/``)
can be judged before anything runs; a host name is judged at connect time, when it resolves
(``orchestrator._egress``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator._egress import EgressRules, literal_refusal
from orchestrator.config._models import HttpServerSpec

if TYPE_CHECKING:
    from orchestrator._locations import Problem
    from orchestrator.config._models import OrchestratorConfig

__all__ = ["egress_problems"]


def egress_problems(config: OrchestratorConfig) -> list[Problem]:
    """A problem at ``servers.<key>.url`` for each server (disabled ones too) whose URL is refused."""
    rules = EgressRules.from_allow(config.egress.allow)
    problems: list[Problem] = []
    for key, spec in config.servers.items():
        if isinstance(spec, HttpServerSpec) and (refusal := literal_refusal(spec.url, rules)) is not None:
            problems.append((("servers", key, "url"), refusal))
    return problems

"""What of a server's listing may be served: the seam where the trust layer judges each listing.

The pool hands every listing a server makes (the first, and each re-listing after a change or
a reconnect) to a ``ManifestGate`` before it joins the catalogue. The gate answers with the
part that may be served and, for each definition it holds back, why and how to release it.
The pool keeps the rest apart so a call of a held-back tool is refused with that reason
rather than "unknown tool".

Does not: judge anything (``orchestrator.trust`` does, and the aggregator plugs it in; this
layer never imports trust).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from orchestrator.catalog import ServerManifest
    from orchestrator.config import OrchestratorConfig

__all__ = ["Admission", "DefinitionKind", "ManifestGate", "Withheld"]

DefinitionKind = Literal["tool", "prompt", "resource_template"]


@dataclass(frozen=True, slots=True)
class Withheld:
    """One definition a gate held back.

    Attributes:
        kind: Tool, prompt or resource template.
        name: Its name on its own server.
        reason: A whole sentence for the caller: what is wrong and how to release it.
    """

    kind: DefinitionKind
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Admission:
    """A gate's answer: what may be served, and what was held back."""

    served: ServerManifest
    withheld: tuple[Withheld, ...] = ()


class ManifestGate(Protocol):
    """Judges a server's listing before it is served."""

    async def admit(
        self, manifest: ServerManifest, config: OrchestratorConfig, others: Mapping[str, Collection[str]]
    ) -> Admission:
        """What of ``manifest`` may be served.

        Args:
            manifest: The server's listing, as it sent it (with its prefix and tool filter).
            config: The configuration the pool runs now (the server's entry is in it).
            others: Every other configured server's key -> the tool names exposed for it now.
        """
        ...

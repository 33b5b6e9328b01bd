"""Downstream connections: one supervised MCP client per configured server.

Owns starting (concurrently), supervising and restarting downstream servers, their stdio
process groups and stderr, listing their catalogues, starting lazy servers on demand and
stopping them when idle (serving the listing a ``ManifestCache`` kept meanwhile), health probes, circuit breakers,
retries of read-only or idempotent calls after transport faults, per-call timeouts and
cancellation, handing a server's requests for input (sampling, elicitation, roots) to the
upstream client of the call they belong to (through the ``UpstreamPeer`` the server layer
passes in), and the mapping of transport and protocol faults to the ``DownstreamError``
tree. It merges catalogues through ``orchestrator.catalog`` and routes calls by exposed
name. It does not serve anything upstream and knows nothing of workflows, nor of OAuth
tokens: an HTTP server's ``httpx2.Auth`` comes from the layer above (``AuthForFn``).
"""

from orchestrator.downstream._admission import Admission, DefinitionKind, ManifestGate, Withheld
from orchestrator.downstream._breaker import BreakerSnapshot
from orchestrator.downstream._connection import DownstreamServer, ServerState, ServerStatus
from orchestrator.downstream._manifest_cache import ManifestCache
from orchestrator.downstream._pool import CatalogChange, CatalogChangeFn, DownstreamPool, PoolChange
from orchestrator.downstream._retry import BackoffPolicy
from orchestrator.downstream._transport import AuthForFn, TransportFactoryFn, open_transport, secret_values
from orchestrator.downstream._upstream_peer import UpstreamPeer, caller_of, current_peer
from orchestrator.downstream._wire_result import WireResult

__all__ = [
    "Admission",
    "AuthForFn",
    "BackoffPolicy",
    "BreakerSnapshot",
    "CatalogChange",
    "CatalogChangeFn",
    "DefinitionKind",
    "DownstreamPool",
    "DownstreamServer",
    "ManifestCache",
    "ManifestGate",
    "PoolChange",
    "ServerState",
    "ServerStatus",
    "TransportFactoryFn",
    "UpstreamPeer",
    "WireResult",
    "Withheld",
    "caller_of",
    "current_peer",
    "open_transport",
    "secret_values",
]

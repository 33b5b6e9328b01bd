"""The egress guard: where the orchestrator may connect on someone's behalf.

Every URL the orchestrator fetches (a downstream server's URL, the endpoints an OAuth server
announces, a client's metadata document, a redirect) goes through one set of rules: the
address its host resolves to is classified (``classify``), checked against ``EgressRules``
by where the URL came from (written in the config, or learned from the network), and the
connection goes to the address that was checked (``GuardedTransport``). ``fetch_guarded``
is one GET under those rules, for URLs a stranger chose. No orchestrator imports: any layer
may use it.
"""

from orchestrator._egress._addresses import (
    CLASS_WORDS,
    METADATA_NETWORKS,
    AddressClass,
    IPAddress,
    IPNetwork,
    classify,
    literal_address,
    reached_address,
)
from orchestrator._egress._fetch import EgressPolicy, fetch_guarded
from orchestrator._egress._rules import EgressError, EgressRefused, EgressRules, UrlOrigin, describe_refusal
from orchestrator._egress._transport import (
    GuardedTransport,
    ResolveFn,
    literal_refusal,
    origin_url,
    resolve_checked,
    system_resolve,
)

__all__ = [
    "CLASS_WORDS",
    "METADATA_NETWORKS",
    "AddressClass",
    "EgressError",
    "EgressPolicy",
    "EgressRefused",
    "EgressRules",
    "GuardedTransport",
    "IPAddress",
    "IPNetwork",
    "ResolveFn",
    "UrlOrigin",
    "classify",
    "describe_refusal",
    "fetch_guarded",
    "literal_address",
    "literal_refusal",
    "origin_url",
    "reached_address",
    "resolve_checked",
    "system_resolve",
]

"""An OTLP/HTTP trace receiver in its own process, for the tracing-on paths of the benchmark.

    python -m bench._otlp_sink

Runs ``tests.otlp_receiver.OtlpReceiver`` on 127.0.0.1 (a free port), prints ``LISTENING <url>``
to stderr, and on SIGTERM or SIGINT prints ``RECEIVED <json>`` (span and request counts, spans
per service and per service and name) to stderr and exits. It runs in a process of its own,
as a collector would, so decoding the exports costs the benchmark client neither CPU nor
event-loop time.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter

from tests.otlp_receiver import OtlpReceiver

_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def main() -> None:
    """Receive until told to stop, then report what arrived."""
    # Blocked before the server thread starts, so only sigwait below sees them.
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    with OtlpReceiver() as receiver:
        print(f"LISTENING {receiver.url}", file=sys.stderr, flush=True)
        signal.sigwait(_SIGNALS)
        spans = receiver.spans
        requests = receiver.requests
    summary = {
        "spans": len(spans),
        "requests": len(requests),
        "by_service": dict(Counter(span.service_name for span in spans)),
        "by_name": {
            f"{k[0]}: {k[1]} ({k[2]})": v for k, v in Counter((s.service_name, s.name, s.kind) for s in spans).items()
        },
    }
    print("RECEIVED " + json.dumps(summary, sort_keys=True), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()

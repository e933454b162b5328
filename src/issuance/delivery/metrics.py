"""In-process delivery metrics: latency needs a histogram, which the database cannot give cheaply.

Each process that delivers (`issuance worker`, or `serve` with its delivery thread) counts its own;
Prometheus sums them across processes. The database-derived gauges live in api/routes/metrics.py.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from issuance.domain.retry import Verdict

REGISTRY = CollectorRegistry(auto_describe=True)  # served by /metrics and `worker --metrics-port`

POST_SECONDS = Histogram(
    "issuance_delivery_post_seconds",
    "Round trip of one notification POST to an issuer endpoint",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
LAG_SECONDS = Histogram(
    "issuance_delivery_lag_seconds",
    "From the state change being recorded to its acknowledgement by the issuer (first attempt)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600),
    registry=REGISTRY,
)
ATTEMPTS = Counter(
    "issuance_delivery_attempts",
    "Delivery attempts by what they ended in",
    labelnames=["verdict"],
    registry=REGISTRY,
)
ATTEMPTS_BY_VERDICT = {v: ATTEMPTS.labels(v.value.lower()) for v in Verdict}  # one lookup, once

"""`GET /metrics`: Prometheus text format, computed from the database at each scrape.

Reading the outbox rather than counting in memory means every API and worker process reports
the same figures, and a restart loses none. Latency histograms are the exception: they are
counted by the process that delivers (this one when `serve` delivers; `issuance worker
--metrics-port` serves a worker's); so are the order groups, by the API process that answers.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from issuance.api.deps import PlatformDep
from issuance.db.outbox import gauges
from issuance.delivery import metrics as delivery_metrics
from issuance.platform import Platform

router = APIRouter(tags=["Platform"])


class OutboxCollector(Collector):
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        figures = gauges(self.platform.engine, now=self.platform.clock())
        by_status = GaugeMetricFamily(
            "issuance_deliveries", "Notification deliveries by state", labels=["status"]
        )
        for status, count in figures.by_status.items():
            by_status.add_metric([status.lower()], count)
        yield by_status
        yield GaugeMetricFamily(
            "issuance_deliveries_in_flight",
            "Deliveries claimed by a worker",
            value=figures.in_flight,
        )
        yield GaugeMetricFamily(
            "issuance_oldest_undelivered_age_seconds",
            "Age of the oldest event not yet delivered",
            value=figures.oldest_pending_age,
        )
        yield GaugeMetricFamily(
            "issuance_delivery_attempts_last_hour",
            "Delivery attempts in the last hour",
            value=figures.attempts_last_hour,
        )
        yield GaugeMetricFamily(
            "issuance_delivery_latency_mean_ms_last_hour",
            "Mean latency of the delivery attempts of the last hour",
            value=figures.mean_latency_ms_last_hour,
        )


class GroupedOrderingCollector(Collector):
    """Single-card orders committed in groups by this process (services/grouped_ordering.py):
    orders over groups is the mean group size, which grows with the load."""

    def __init__(self, platform: Platform) -> None:
        self.ordering = platform.ordering

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "issuance_order_groups",
            "Transactions that placed single-card orders together, in this process",
            value=self.ordering.groups,
        )
        yield CounterMetricFamily(
            "issuance_grouped_orders",
            "Single-card orders placed in those transactions",
            value=self.ordering.grouped,
        )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(platform: PlatformDep) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OutboxCollector(platform))
    registry.register(GroupedOrderingCollector(platform))
    exposition = generate_latest(registry) + generate_latest(delivery_metrics.REGISTRY)
    return Response(exposition, media_type="text/plain; version=0.0.4; charset=utf-8")

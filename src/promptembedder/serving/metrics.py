"""Prometheus metrics of the server, in a registry of its own (so two apps in one process do not collide)."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ROUTES = ("/v1/embeddings", "/v1/models", "/health", "/metrics")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "promptembedder_requests", "HTTP requests by route and status.", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "promptembedder_request_seconds",
            "Time from request to response, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.texts = Counter("promptembedder_texts", "Texts embedded.", registry=self.registry)
        self.tokens = Counter("promptembedder_tokens", "Text tokens read (usage).", registry=self.registry)
        self.batch_texts = Histogram(
            "promptembedder_batch_texts", "Texts per model call.", buckets=_SIZE_BUCKETS, registry=self.registry
        )
        self.batch_tokens = Histogram(
            "promptembedder_batch_padded_tokens",
            "Padded tokens per model call (texts x the longest).",
            buckets=tuple(64 * 2**i for i in range(10)),
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "promptembedder_batch_seconds", "Time of one model call.", buckets=_LATENCY_BUCKETS, registry=self.registry
        )
        self.in_flight = Gauge("promptembedder_requests_in_flight", "Requests being answered.", registry=self.registry)

    def on_batch(self, texts: int, padded_tokens: int, seconds: float) -> None:
        self.batch_texts.observe(texts)
        self.batch_tokens.observe(padded_tokens)
        self.batch_seconds.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestMetrics:
    """ASGI middleware counting every request by route and status, and timing it (unknown paths: "other")."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in ROUTES else "/v1/models/{id}" if path.startswith("/v1/models/") else "other"
        status = 500
        started = time.perf_counter()

        async def capture(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, capture)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

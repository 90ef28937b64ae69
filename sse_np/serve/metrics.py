"""Prometheus metrics of the server, and the middleware that keeps them (and answers 503 while draining)."""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from typing import Any

from .protocol import ApiError

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ENDPOINTS = ("/v1/embeddings", "/v1/models", "/embed", "/health", "/metrics")


class Metrics:
    """Prometheus counters kept by the event-loop thread (no lock needed there)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self.texts: dict[str, int] = {}
        self.tokens: dict[str, int] = {}
        self.in_flight = 0
        self.budget: Any = None  # the ByteBudget of --max-bytes-in-flight, when there is one

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        counts = self.latency.setdefault(endpoint, [0] * (len(LATENCY_BUCKETS) + 1))
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
        self.latency_sum[endpoint] = self.latency_sum.get(endpoint, 0.0) + seconds

    def count(self, model: str, texts: int, tokens: int | None) -> None:
        self.texts[model] = self.texts.get(model, 0) + texts
        if tokens is not None:
            self.tokens[model] = self.tokens.get(model, 0) + tokens

    def render(self) -> str:
        lines = [
            "# HELP sse_np_requests_total HTTP requests answered, by endpoint, method and status.",
            "# TYPE sse_np_requests_total counter",
        ]
        for (endpoint, method, status), n in sorted(self.requests.items()):
            lines.append(f'sse_np_requests_total{{endpoint="{endpoint}",method="{method}",status="{status}"}} {n}')
        lines += [
            "# HELP sse_np_request_duration_seconds Time from request start to the end of the response.",
            "# TYPE sse_np_request_duration_seconds histogram",
        ]
        for endpoint, counts in sorted(self.latency.items()):
            total = 0
            for bound, n in zip((*LATENCY_BUCKETS, "+Inf"), counts):
                total += n
                le = bound if isinstance(bound, str) else repr(bound)
                lines.append(f'sse_np_request_duration_seconds_bucket{{endpoint="{endpoint}",le="{le}"}} {total}')
            lines.append(
                f'sse_np_request_duration_seconds_sum{{endpoint="{endpoint}"}} {self.latency_sum[endpoint]:.6f}'
            )
            lines.append(f'sse_np_request_duration_seconds_count{{endpoint="{endpoint}"}} {total}')
        lines += ["# HELP sse_np_texts_total Texts embedded, by model.", "# TYPE sse_np_texts_total counter"]
        lines += [f'sse_np_texts_total{{model="{_label(m)}"}} {n}' for m, n in sorted(self.texts.items())]
        lines += [
            "# HELP sse_np_tokens_total Tokens embedded through /v1/embeddings (its usage), by model.",
            "# TYPE sse_np_tokens_total counter",
        ]
        lines += [f'sse_np_tokens_total{{model="{_label(m)}"}} {n}' for m, n in sorted(self.tokens.items())]
        lines += [
            "# HELP sse_np_requests_in_flight Requests being answered now.",
            "# TYPE sse_np_requests_in_flight gauge",
            f"sse_np_requests_in_flight {self.in_flight}",
        ]
        if self.budget is not None:
            lines += [
                "# HELP sse_np_request_bytes_admitted Request bytes admitted (--max-bytes-in-flight).",
                "# TYPE sse_np_request_bytes_admitted gauge",
                f"sse_np_request_bytes_admitted {self.budget.used}",
                "# HELP sse_np_requests_waiting Requests waiting for room in --max-bytes-in-flight.",
                "# TYPE sse_np_requests_waiting gauge",
                f"sse_np_requests_waiting {sum(not turn.cancelled() for _, turn in self.budget.waiting)}",
            ]
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Observe:
    """Pure ASGI middleware: in-flight gauge, latency and status metrics, 503 while draining."""

    def __init__(self, app: Callable, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        path = scope["path"]
        endpoint = (
            path
            if path in ENDPOINTS
            else (
                "/v1/models"
                if path.startswith("/v1/models/")
                else "/v1/embeddings"
                if path == "/embeddings"
                else "other"
            )
        )
        started = time.perf_counter()
        status = 500
        state.metrics.in_flight += 1

        async def send_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if state.draining and endpoint != "/metrics":
                error = ApiError(503, "the server is shutting down", None, "shutting_down")
                response = error.tei() if endpoint == "/embed" else error.openai()
                response.headers["connection"] = "close"
                await response(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            state.metrics.in_flight -= 1
            state.metrics.observe(endpoint, scope.get("method", ""), status, time.perf_counter() - started)

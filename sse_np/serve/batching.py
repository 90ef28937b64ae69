"""What the endpoints share (models, the encode pool, metrics) and how texts are encoded.

Small requests (up to ``inline_chars`` characters) are encoded on the event
loop, those ready in the same loop iteration as one call (micro-batching);
larger ones run in a thread pool off the loop, where the kernels (which
release the GIL) run in parallel. ``bench/serve.py`` measured both choices.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from starlette.requests import Request

from .admission import ByteBudget
from .config import ServeConfig
from .metrics import Metrics
from .protocol import SMALL_BODY, ApiError, declared_length, parse_body, read_body, type_name


class ServerState:
    """What the endpoints share: models, limits, the encode pool, metrics, the draining flag."""

    def __init__(self, models: dict[str, Any], config: ServeConfig) -> None:
        self.models = models
        self.config = config
        self.metrics = Metrics()
        self.draining = False
        self.started = int(time.time())
        self.pool_size = config.threads or os.cpu_count() or 1
        self.pool: ThreadPoolExecutor | None = None
        self.coalescers: dict[str, Coalescer] = {}
        self.indexes: dict[str, Any] = {}  # name -> sse_np.Index, for /v1/search
        self.budget = self.metrics.budget = ByteBudget(config.max_bytes_in_flight)

    def admit(self, request: Request) -> contextlib.AbstractAsyncContextManager[Any]:
        """Wait for room in ``--max-bytes-in-flight`` for this request's body (its declared length, or the
        body limit when it declares none); small bodies go straight in."""
        length = declared_length(request, self.config.max_body_bytes)
        cost = self.config.max_body_bytes if length is None else length
        return contextlib.nullcontext() if cost <= SMALL_BODY else self.budget.hold(cost)

    async def read(self, request: Request) -> Any:
        """The request's JSON body (limits checked; large bodies parsed off the event loop)."""
        return await parse_body(await read_body(request, self.config.max_body_bytes), self.config.max_inputs)

    def executor(self) -> ThreadPoolExecutor:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.pool_size, thread_name_prefix="sse-np-encode")
        return self.pool

    def pick(self, name: Any) -> tuple[str, Any]:
        if name is not None and not isinstance(name, str):
            raise ApiError(400, f"model is {type_name(name)}, expected str", "model")
        if name in self.models:
            return name, self.models[name]
        if len(self.models) == 1 and not self.config.strict_model:
            return next(iter(self.models.items()))  # lenient: any name reaches the only model
        if name is None:
            raise ApiError(400, f"model is required: one of {', '.join(sorted(self.models))}", "model")
        raise ApiError(
            404,
            f"The model '{name}' does not exist; served: {', '.join(sorted(self.models))}",
            "model",
            "model_not_found",
        )

    async def encode(
        self, name: str, model: Any, texts: list[str], dim: int, normalize: bool, count_tokens: bool
    ) -> tuple[np.ndarray, int | None]:
        if sum(map(len, texts)) <= self.config.inline_chars:
            # Small: on the event loop, cheaper than a thread hop (measured, bench/serve.py).
            if self.config.batching:  # not "if others are in flight": they start only once this one waits
                coalescer = self.coalescers.get(name)
                if coalescer is None:
                    coalescer = self.coalescers[name] = Coalescer(model)
                return await coalescer.submit(texts, dim, normalize, count_tokens)
            return encode_texts(model, texts, dim, normalize, count_tokens)
        # Large: in the pool, where the kernels run in parallel (they release the GIL).
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor(), encode_texts, model, texts, dim, normalize, count_tokens)


def encode_texts(
    model: Any, texts: list[str], dim: int, normalize: bool, count_tokens: bool
) -> tuple[np.ndarray, int | None]:
    vectors = model.encode(texts, dim, normalize=normalize)
    tokens = None
    if count_tokens:
        ids, _ = model.tokenize(texts)
        tokens = len(ids)
    return vectors, tokens


class Coalescer:
    """Small requests that arrive in the same event-loop iteration are encoded as one call, on the loop.

    No waiting and no thread hop: the flush runs right after the handlers
    that were ready together (e.g. read from one ``epoll`` wake-up).
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.pending: dict[tuple[int, bool], list[tuple[list[str], bool, asyncio.Future]]] = {}
        self.scheduled = False

    def submit(self, texts: list[str], dim: int, normalize: bool, count_tokens: bool) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.setdefault((dim, normalize), []).append((texts, count_tokens, future))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self.scheduled = False
        pending, self.pending = self.pending, {}
        for (dim, normalize), group in pending.items():
            count = any(c for _, c, _ in group)
            try:
                texts = [t for part, _, _ in group for t in part]
                vectors = self.model.encode(texts, dim, normalize=normalize)
                offsets = self.model.tokenize(texts)[1] if count else None
            except Exception:
                for part, c, future in group:
                    try:
                        future.set_result(encode_texts(self.model, part, dim, normalize, c))
                    except Exception as exc:
                        future.set_exception(exc)
                continue
            start = 0
            for part, c, future in group:
                stop = start + len(part)
                tokens = int(offsets[stop] - offsets[start]) if c and offsets is not None else None
                if not future.done():
                    future.set_result((vectors[start:stop], tokens))
                start = stop

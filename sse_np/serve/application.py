"""An OpenAI-compatible embeddings server: ``sse-np serve``, or :func:`app` in your own ASGI server.

Endpoints
---------
``POST /v1/embeddings``
    The OpenAI embeddings API: ``input`` (a string or a list of strings),
    ``model``, ``dimensions`` (Matryoshka truncation), ``encoding_format``
    (``float`` or ``base64``: little-endian float32, as the OpenAI client
    decodes it), ``user`` (accepted, unused). ``usage`` counts the model's
    own tokens. Token-id arrays are refused (400): the public engine pools
    texts, and ids from another tokenizer (tiktoken) would not fit the
    model's vocabulary anyway.
``GET /v1/models``, ``GET /v1/models/{id}``
    The served models.
``POST /embed``
    Hugging Face text-embeddings-inference's shape: ``inputs`` (string or
    list), ``normalize`` (default true), ``dimensions``, ``truncate`` and
    ``truncation_direction`` (accepted; a static model has no context
    limit, the tokenizer.json's own truncation, if any, always applies),
    ``prompt_name`` (refused: SSE models define no prompts). Answers a bare
    list of vectors; errors are TEI's ``{"error", "error_type"}``.
``GET /health``
    200 ``{"status": "ok"}``; 503 while shutting down.
``GET /metrics``
    Prometheus text: requests by endpoint and status, latency histogram,
    texts and tokens per model, requests in flight. Per worker process.

Errors on ``/v1/*`` are OpenAI's ``{"error": {"message", "type", "param",
"code"}}``: 400 for bad JSON, types or ``dimensions`` (naming the field and
item, e.g. ``input[3] is int, expected str``), 404 for an unknown model,
413 over a limit (inputs per request, characters per text, body bytes),
503 while shutting down, 500 (no path or traceback) for anything else.

Model names: with one model served, every request gets it whatever
``model`` says (OpenAI clients always send a name, often a default such as
``text-embedding-3-small``), unless ``strict_model=True``; with several,
``model`` must name one of them (404 otherwise).

Concurrency: small requests (up to ``inline_chars`` characters) are encoded
on the event loop, those ready together as one call (micro-batching); larger
ones run in a thread pool off the loop, where the kernels (which release the
GIL) run in parallel. bench/serve.py measured both choices. SIGTERM or
SIGINT: the server stops accepting connections, requests in flight finish,
requests that still arrive get 503.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import Response
    from starlette.routing import Route
except ImportError:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("sse_np.serve needs the 'serve' extra: pip install 'sse_np[serve]'") from None

try:  # 5-20x faster float responses (measured); float32 printed in its shortest round-trip form
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

log = logging.getLogger("sse_np.serve")

#: Environment variable carrying the JSON configuration to :func:`create_app` (``--workers`` > 1).
CONFIG_ENV = "SSE_NP_SERVE_CONFIG"

DEFAULT_MAX_INPUTS = 2048  # OpenAI's own limit per request
DEFAULT_MAX_TEXT_CHARS = 200_000
DEFAULT_MAX_BODY_BYTES = 32 * 2**20
DEFAULT_INLINE_CHARS = 512  # requests up to this many characters are encoded on the event loop
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ENDPOINTS = ("/v1/embeddings", "/v1/models", "/embed", "/health", "/metrics")


@dataclass
class ServeConfig:
    """Everything :func:`create_app` needs, JSON-serialisable (sent to worker processes).

    ``models`` holds ``name=path`` or ``path`` specs; an empty list means the default model.
    """

    models: list[str] = field(default_factory=list)
    threads: int | None = None
    max_inputs: int = DEFAULT_MAX_INPUTS
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    strict_model: bool = False
    inline_chars: int = DEFAULT_INLINE_CHARS
    batching: bool = True
    backend: str | None = None


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """A client (4xx) or server (5xx) error answered in the endpoint's error shape."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None, kind: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind or ("invalid_request_error" if status < 500 else "server_error")

    def openai(self) -> Response:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return _json_response(body, self.status)

    def tei(self) -> Response:
        # TEI's error types: Validation (413/422), Empty (400), Unhealthy (503), Backend (500)
        kind = {413: "Validation", 422: "Validation", 400: "Empty", 404: "Validation", 503: "Unhealthy"}
        return _json_response({"error": self.message, "error_type": kind.get(self.status, "Backend")}, self.status)


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", type(None): "null"}.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- models


def _name_of(spec: str) -> tuple[str, str]:
    """``"name=path"`` -> (name, path); ``"path"`` -> (its folder name or the hub id, path)."""
    if "=" in spec and not os.path.exists(spec):
        name, _, path = spec.partition("=")
        if not name or not path:
            raise ValueError(f"--model {spec!r}: expected NAME=PATH or PATH")
        return name, path
    parts = spec.split("/")
    if len(parts) == 2 and all(parts) and not os.path.exists(spec):
        return spec, spec  # a hub id names itself
    return Path(spec).resolve().name or spec, spec


def _load_models(models: Any, threads: int | None, backend: str | None) -> dict[str, Any]:
    import sse_np

    def one(value: Any) -> Any:
        if isinstance(value, (str, os.PathLike)):
            return sse_np.load(value, threads=threads, backend=backend)
        return value

    out: dict[str, Any] = {}
    if models is None or (isinstance(models, (list, tuple)) and not models):
        model = sse_np.default_model() if backend is None else sse_np.load(sse_np.default_model_path(), backend=backend)
        out["default"] = model
    elif isinstance(models, Mapping):
        out = {str(name): one(value) for name, value in models.items()}
    else:
        items = [models] if isinstance(models, (str, os.PathLike)) or hasattr(models, "tokenize") else list(models)
        for item in items:
            if not isinstance(item, (str, os.PathLike)):
                name, model = Path(str(item.path)).name or "model", item
            else:
                name, path = _name_of(os.fspath(item))
                model = one(path)
            if name in out:
                raise ValueError(f"two models are named {name!r}; name them with NAME=PATH")
            out[name] = model
    if not out:
        raise ValueError("no model to serve")
    if threads is not None:
        for model in out.values():
            model.threads = threads
    return out


# --------------------------------------------------------------------------- metrics


class Metrics:
    """Prometheus counters kept by the event-loop thread (no lock needed there)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self.texts: dict[str, int] = {}
        self.tokens: dict[str, int] = {}
        self.in_flight = 0

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
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# --------------------------------------------------------------------------- state and encoding


class _State:
    """What the endpoints share: models, limits, the encode pool, metrics, the draining flag."""

    def __init__(self, models: dict[str, Any], config: ServeConfig) -> None:
        self.models = models
        self.config = config
        self.metrics = Metrics()
        self.draining = False
        self.started = int(time.time())
        self.pool_size = config.threads or os.cpu_count() or 1
        self.pool: ThreadPoolExecutor | None = None
        self.coalescers: dict[str, _Coalescer] = {}

    def executor(self) -> ThreadPoolExecutor:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.pool_size, thread_name_prefix="sse-np-encode")
        return self.pool

    def pick(self, name: Any) -> tuple[str, Any]:
        if name is not None and not isinstance(name, str):
            raise ApiError(400, f"model is {_type_name(name)}, expected str", "model")
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
                    coalescer = self.coalescers[name] = _Coalescer(model)
                return await coalescer.submit(texts, dim, normalize, count_tokens)
            return _encode(model, texts, dim, normalize, count_tokens)
        # Large: in the pool, where the kernels run in parallel (they release the GIL).
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor(), _encode, model, texts, dim, normalize, count_tokens)


def _encode(
    model: Any, texts: list[str], dim: int, normalize: bool, count_tokens: bool
) -> tuple[np.ndarray, int | None]:
    vectors = model.encode(texts, dim, normalize=normalize)
    tokens = None
    if count_tokens:
        ids, _ = model.tokenize(texts)
        tokens = len(ids)
    return vectors, tokens


class _Coalescer:
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
            except Exception:  # noqa: BLE001 - one by one, so that only the culprit fails
                for part, c, future in group:
                    try:
                        future.set_result(_encode(self.model, part, dim, normalize, c))
                    except Exception as exc:  # noqa: BLE001
                        future.set_exception(exc)
                continue
            start = 0
            for part, c, future in group:
                stop = start + len(part)
                tokens = int(offsets[stop] - offsets[start]) if c and offsets is not None else None
                if not future.done():
                    future.set_result((vectors[start:stop], tokens))
                start = stop


# --------------------------------------------------------------------------- request parsing


async def _read_json(request: Request, limit: int) -> Any:
    """The body as JSON, read incrementally and refused (413) as soon as it passes ``limit`` bytes."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise ApiError(
            413, f"request body is {int(length)} bytes, limit {limit} (--max-body-bytes)", None, "body_too_large"
        )
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body exceeds {limit} bytes (--max-body-bytes)", None, "body_too_large")
            chunks.append(chunk)
    except ClientDisconnect:  # nobody to answer; not a server error
        raise ApiError(400, "the client disconnected before sending the whole body", None) from None
    try:  # JSON on the wire is UTF-8 (RFC 8259); json.loads(bytes) would also guess UTF-16/32
        return json.loads(b"".join(chunks).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"request body is not valid UTF-8 (byte {exc.start})", None, "invalid_json") from None
    except ValueError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", None, "invalid_json") from None
    except RecursionError:
        raise ApiError(400, "request body is not valid JSON: nested too deeply", None, "invalid_json") from None


def _texts(value: Any, field_name: str, limits: ServeConfig) -> list[str]:
    """``input``/``inputs`` as a list of str, or an ApiError naming the field and item."""
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list):
        texts = value
        if not texts:
            raise ApiError(400, f"{field_name} is an empty list; send at least one text", field_name)
        if all(_is_int(v) for v in texts) or all(isinstance(v, list) for v in texts):
            raise ApiError(
                400,
                f"{field_name} holds token ids; this server embeds text only: send the texts "
                "as strings (token ids of another tokenizer, e.g. tiktoken's, do not apply to "
                "this model's vocabulary)",
                field_name,
                "token_ids_unsupported",
            )
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ApiError(400, f"{field_name}[{i}] is {_type_name(text)}, expected str", field_name)
    elif value is None:
        raise ApiError(400, f"{field_name} is required (a string or a list of strings)", field_name)
    else:
        raise ApiError(400, f"{field_name} is {_type_name(value)}, expected str or a list of str", field_name)
    if len(texts) > limits.max_inputs:
        raise ApiError(
            413,
            f"{field_name} has {len(texts)} texts, limit {limits.max_inputs} (--max-inputs)",
            field_name,
            "too_many_inputs",
        )
    for i, text in enumerate(texts):
        if len(text) > limits.max_text_chars:
            raise ApiError(
                413,
                f"{field_name}[{i}] has {len(text)} characters, limit {limits.max_text_chars} (--max-text-chars)",
                field_name,
                "text_too_long",
            )
        if not text.isascii():
            try:  # the tokenizer takes only valid Unicode: a lone surrogate (JSON "\ud800") cannot go in
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ApiError(
                    400,
                    f"{field_name}[{i}] holds a lone surrogate at character {exc.start}, not valid Unicode",
                    field_name,
                ) from None
    return texts


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dimensions(value: Any, model: Any, field_name: str = "dimensions") -> int:
    if value is None:  # sse_np's one rule: the model's truncate_dim, else its full width
        return int(model.get_embedding_dimension())
    if not _is_int(value):
        raise ApiError(400, f"{field_name} is {_type_name(value)}, expected an integer in 1..{model.dim}", field_name)
    if not 1 <= value <= int(model.dim):
        raise ApiError(
            400,
            f"{field_name} must be in 1..{model.dim} (this model's width; trained Matryoshka "
            f"sizes are 512, 256, 128, 64, 32 where <= {model.dim}), got {value}",
            field_name,
        )
    return value


def _bool(value: Any, field_name: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(422, f"{field_name} is {_type_name(value)}, expected true or false", field_name)
    return value


# --------------------------------------------------------------------------- responses


def _dumps(obj: Any) -> bytes:
    if _orjson is not None:
        return _orjson.dumps(obj, option=_orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(obj, separators=(",", ":"), default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(_dumps(body), status, headers=headers, media_type="application/json")


def _b64(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


# --------------------------------------------------------------------------- endpoints


def _build_routes(state: _State) -> list[Route]:
    async def embeddings(request: Request) -> Response:
        try:
            body = await _read_json(request, state.config.max_body_bytes)
            if not isinstance(body, dict):
                raise ApiError(400, f"request body is a JSON {_type_name(body)}, expected an object", None)
            name, model = state.pick(body.get("model"))
            texts = _texts(body.get("input"), "input", state.config)
            dim = _dimensions(body.get("dimensions"), model)
            fmt = body.get("encoding_format") or "float"
            if fmt not in ("float", "base64"):
                raise ApiError(400, f"encoding_format must be 'float' or 'base64', got {fmt!r}", "encoding_format")
            user = body.get("user")
            if user is not None and not isinstance(user, str):
                raise ApiError(400, f"user is {_type_name(user)}, expected str", "user")
            vectors, tokens = await state.encode(name, model, texts, dim, True, True)
            state.metrics.count(name, len(texts), tokens)
            if fmt == "base64":
                data = [{"object": "embedding", "index": i, "embedding": _b64(v)} for i, v in enumerate(vectors)]
            else:
                data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
            return _json_response(
                {
                    "object": "list",
                    "data": data,
                    "model": name,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            )
        except ApiError as exc:
            return exc.openai()
        except Exception:  # noqa: BLE001 - logged here, never shown to the client
            log.exception("internal error on /v1/embeddings")
            return ApiError(500, "internal server error").openai()

    async def embed(request: Request) -> Response:
        try:
            body = await _read_json(request, state.config.max_body_bytes)
            if not isinstance(body, dict):
                raise ApiError(422, f"request body is a JSON {_type_name(body)}, expected an object", None)
            name, model = state.pick(body.get("model"))
            texts = _texts(body.get("inputs"), "inputs", state.config)
            dim = _dimensions(body.get("dimensions"), model)
            normalize = _bool(body.get("normalize"), "normalize", True)
            _bool(body.get("truncate"), "truncate", False)
            direction = body.get("truncation_direction")
            if direction is not None and (not isinstance(direction, str) or direction.lower() not in ("left", "right")):
                raise ApiError(
                    422, f"truncation_direction must be 'Left' or 'Right', got {direction!r}", "truncation_direction"
                )
            if body.get("prompt_name") is not None:
                raise ApiError(422, "prompt_name: this model defines no prompts", "prompt_name")
            vectors, tokens = await state.encode(name, model, texts, dim, normalize, False)
            state.metrics.count(name, len(texts), tokens)
            return _json_response(vectors)
        except ApiError as exc:
            if exc.status == 400:  # TEI answers malformed requests with 422
                exc.status = 422
            return exc.tei()
        except Exception:  # noqa: BLE001
            log.exception("internal error on /embed")
            return ApiError(500, "internal server error").tei()

    def model_card(name: str, model: Any) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": state.started,
            "owned_by": "sse_np",
            "dimensions": int(model.dim),
            "vocab_size": int(model.vocab_size),
        }

    async def models(request: Request) -> Response:
        return _json_response({"object": "list", "data": [model_card(n, m) for n, m in state.models.items()]})

    async def model_info(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in state.models:
            return ApiError(404, f"The model '{name}' does not exist", "model", "model_not_found").openai()
        return _json_response(model_card(name, state.models[name]))

    async def health(request: Request) -> Response:
        if state.draining:
            return _json_response({"status": "shutting down"}, 503)
        return _json_response({"status": "ok"})

    async def metrics(request: Request) -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return [
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/embeddings", embeddings, methods=["POST"]),  # clients whose base_url lacks /v1
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{name:path}", model_info, methods=["GET"]),
        Route("/embed", embed, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


class _Observe:
    """Pure ASGI middleware: in-flight gauge, latency and status metrics, 503 while draining."""

    def __init__(self, app: Callable, state: _State) -> None:
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
            if path in _ENDPOINTS
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

        async def send_status(message: dict) -> None:
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


# --------------------------------------------------------------------------- the app


def app(
    models: Any = None,
    *,
    threads: int | None = None,
    max_inputs: int = DEFAULT_MAX_INPUTS,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    strict_model: bool = False,
    inline_chars: int = DEFAULT_INLINE_CHARS,
    batching: bool = True,
    backend: str | None = None,
) -> Starlette:
    """The embeddings server as a Starlette ASGI app (serve it with uvicorn, hypercorn, granian...).

    Parameters
    ----------
    models : SSEModel, str, PathLike, mapping or sequence of those, optional
        What to serve. A mapping is ``{name: model_or_path}``; strings are
        ``"name=path"`` or a path / hub id (named by its folder, or the hub
        id); an ``SSEModel`` is named by its folder. Default: the default
        model, named ``"default"``.
    threads : int, optional
        Encode calls running at once (the thread pool), and the most threads
        one call uses. Default: the number of cores.
    max_inputs, max_text_chars, max_body_bytes : int
        Limits per request; beyond them the answer is 413.
    strict_model : bool
        With a single model, answer 404 to any other name (default: every
        name reaches the single model).
    inline_chars : int
        Requests of at most this many characters (all texts together) are
        encoded on the event loop, where a thread hop would cost more than
        the encoding; larger ones go to the thread pool. 0: all to the pool.
    batching : bool
        Micro-batching: the small requests that are ready in the same
        event-loop iteration are encoded as one call (no added wait).
    backend : {"auto", "numba", "numpy"}, optional
        Passed to :func:`sse_np.load` for models given as paths.

    Returns
    -------
    starlette.applications.Starlette
    """
    config = ServeConfig(
        models=[],
        threads=threads,
        max_inputs=_positive(max_inputs, "max_inputs"),
        max_text_chars=_positive(max_text_chars, "max_text_chars"),
        max_body_bytes=_positive(max_body_bytes, "max_body_bytes"),
        strict_model=strict_model,
        inline_chars=_non_negative(inline_chars, "inline_chars"),
        batching=batching,
        backend=backend,
    )
    state = _State(_load_models(models, threads, backend), config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):
        for model in state.models.values():
            model.warmup()
            model.encode(["warm up"], normalize=True)
        restore = _drain_on_signals(state)
        try:
            yield
        finally:
            restore()
            if state.pool is not None:
                state.pool.shutdown(wait=True)
                state.pool = None

    application = Starlette(
        routes=_build_routes(state), middleware=[Middleware(_Observe, state=state)], lifespan=lifespan
    )
    application.state.sse_np = state
    return application


def _non_negative(value: Any, name: str) -> int:
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def _positive(value: Any, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _drain_on_signals(state: _State) -> Callable[[], None]:
    """Chain a handler before the server's own SIGTERM/SIGINT one: from then on new requests get 503.

    The ASGI server (uvicorn) installs its handlers before the lifespan
    starts; it then stops listening and waits for requests in flight.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        state.draining = True
        prior = previous.get(signum)
        if callable(prior):
            prior(signum, frame)
        elif prior == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, handler)
        except (ValueError, OSError):  # pragma: no cover - not the main thread of the interpreter
            previous.pop(signum, None)

    def restore() -> None:
        for signum, prior in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                if signal.getsignal(signum) is handler:
                    signal.signal(signum, prior)

    return restore


def create_app() -> Starlette:
    """App factory for ``uvicorn --factory sse_np.serve:create_app`` (and ``--workers`` > 1).

    Reads a :class:`ServeConfig` as JSON from ``$SSE_NP_SERVE_CONFIG`` (all fields optional).
    """
    return _app_from(ServeConfig(**json.loads(os.environ.get(CONFIG_ENV, "{}"))))


def _app_from(config: ServeConfig) -> Starlette:
    return app(
        config.models or None,
        threads=config.threads,
        max_inputs=config.max_inputs,
        max_text_chars=config.max_text_chars,
        max_body_bytes=config.max_body_bytes,
        strict_model=config.strict_model,
        inline_chars=config.inline_chars,
        batching=config.batching,
        backend=config.backend,
    )


def run(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    log_level: str = "info",
    graceful_timeout: float | None = 30.0,
) -> None:
    """Serve with uvicorn until SIGTERM/SIGINT (requests in flight finish first).

    Parameters
    ----------
    config : ServeConfig
        Models and limits.
    host, port : str, int
        Where to listen.
    workers : int
        Processes; > 1 starts uvicorn's supervisor, each worker loading the
        models itself (the weight files are memory-mapped, so the pages of
        the tables are shared through the page cache).
    log_level : str
        uvicorn's log level.
    graceful_timeout : float, optional
        Most seconds to wait for requests in flight at shutdown.
    """
    try:
        import uvicorn
    except ImportError:
        raise ImportError("sse_np.serve needs the 'serve' extra: pip install 'sse_np[serve]'") from None
    options = dict(
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=graceful_timeout,
        access_log=False,
        server_header=False,
    )

    def banner(names: str) -> None:
        print(
            f"sse-np serve: {names} on http://{host}:{port} with {workers} worker(s) (POST /v1/embeddings, "
            "/embed; GET /v1/models, /health, /metrics)",
            file=sys.stderr,
            flush=True,
        )

    if workers > 1:  # each worker process builds the app from the configuration in the environment
        os.environ[CONFIG_ENV] = json.dumps(asdict(config))
        banner(", ".join(config.models) or "the default model")
        uvicorn.run("sse_np.serve:create_app", factory=True, workers=workers, **options)
    else:
        application = _app_from(config)
        banner(", ".join(application.state.sse_np.models))
        uvicorn.run(application, **options)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sse_np.serve ...``: the same as ``sse-np serve ...``."""
    from .cli import main as cli_main

    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

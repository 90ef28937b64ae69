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

Limits (``sse-np serve``): a client has ``--client-timeout`` seconds to send a whole request;
at ``--max-connections`` a new connection evicts the longest-idle one
(:mod:`~sse_np.serve.connections`, uvicorn only); bodies over 64 KiB are parsed in a thread
after a cheap check of how many JSON values they hold; ``--max-bytes-in-flight`` bounds the
request bytes being handled at once (:mod:`~sse_np.serve.admission`). ``--api-key`` /
``$SSE_NP_API_KEY``: a Bearer key on every route but ``/health`` (:mod:`~sse_np.serve.auth`).

Modules: :mod:`~sse_np.serve.config` (limits, models), :mod:`~sse_np.serve.protocol`
(parsing, error shapes), :mod:`~sse_np.serve.batching` (encoding, micro-batching),
:mod:`~sse_np.serve.metrics`, :mod:`~sse_np.serve.routes`, :mod:`~sse_np.serve.application`
(:func:`app`, :func:`create_app`) and :mod:`~sse_np.serve.run` (uvicorn). Needs the ``serve``
extra; importing this package without it raises :class:`sse_np.MissingDependencyError`.
"""

from __future__ import annotations

from importlib.util import find_spec

from ..errors import missing_extra

if find_spec("starlette") is None:  # pragma: no cover - exercised by the missing-extra test
    raise missing_extra("sse_np.serve", "serve")

from .application import app, create_app
from .config import CONFIG_ENV, ServeConfig
from .run import run

__all__ = ["CONFIG_ENV", "ServeConfig", "app", "create_app", "run"]

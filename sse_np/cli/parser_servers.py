"""The parsers of ``sse-np bench`` and ``sse-np serve`` (their modules are imported only when they run)."""

from __future__ import annotations

import argparse
from typing import Any

from .arguments import _add_model_args, _parse_dims, _positive_float, _positive_int


def _parse_names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _add_bench_parser(sub: Any) -> None:
    """``sse-np bench``: speed on this machine (sse_np.bench), in-process or against a server (--url)."""
    p = sub.add_parser(
        "bench",
        help="measure speed on this machine: latency, throughput, threads, callers, memory",
        description="Benchmark sse_np on this machine and model: single-text latency, calls of 1/32/1024, "
        "documents in one call, a threads sweep against the forked-process ceiling, concurrent callers "
        "and peak memory; medians of repeated runs with their spread. With --url: a running "
        "OpenAI-compatible embeddings server at concurrency 1, 8 and 64.",
    )
    _add_model_args(p, threads=True)
    p.add_argument("--data", metavar="FILE", help="texts: lines, JSONL (text/title) or Parquet (default: built-in)")
    p.add_argument("--dim", type=_positive_int, default=None, help="dimension (default: the model's)")
    p.add_argument(
        "--duration",
        type=float,
        default=40.0,
        help="seconds the workloads share, model loading aside (default: 40)",
    )
    p.add_argument("--repeats", type=_positive_int, default=5, help="runs per figure (default: 5)")
    p.add_argument("--backend", choices=("auto", "numba", "numpy"), default=None, help="engine back-end")
    p.add_argument("--json", metavar="FILE", help="write the results and the machine as JSON")
    p.add_argument("--compare", metavar="OLD.json", help="print ratios against an earlier --json run")
    p.add_argument(
        "--peers",
        type=_parse_names,
        default=[],
        metavar="P1,P2",
        help="also time sentence-transformers and/or model2vec on the same model (needs the 'peers' extra)",
    )
    p.add_argument("--url", help="measure a running server at http://HOST:PORT instead (POST /v1/embeddings)")
    p.add_argument("--http-model", metavar="NAME", help="with --url: the request's model (default: the first listed)")
    p.add_argument(
        "--concurrency",
        type=_parse_dims,
        default=[1, 8, 64],
        metavar="C1,C2",
        help="with --url: concurrent connections (default: 1,8,64)",
    )
    p.add_argument("--max-requests", type=_positive_int, default=100_000, help="with --url: most requests per level")
    p.add_argument("--no-wrk", action="store_true", help="with --url: the built-in client even if wrk is installed")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(func=_bench)


def _add_serve_parser(sub: Any) -> None:
    """``sse-np serve``: the OpenAI-compatible embeddings server (needs the 'serve' extra)."""
    p = sub.add_parser(
        "serve",
        help="serve embeddings over HTTP (OpenAI /v1/embeddings, TEI /embed)",
        description="Serve models over HTTP: POST /v1/embeddings (OpenAI), POST /embed (text-embeddings-"
        "inference), GET /v1/models, /health, /metrics (Prometheus). With one model, any "
        "request's model name reaches it (unless --strict-model); with several, `model` picks "
        "one. SIGTERM: requests in flight finish, new ones get 503. Needs the 'serve' extra.",
    )
    p.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="PATH_OR_HUB_ID|NAME=PATH",
        help="a model to serve, repeatable; NAME=PATH names it (default: the default model, "
        "named 'default'; a path is named by its folder, a hub id by itself)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_positive_int, default=8080, help="port (default: 8080)")
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="processes (default: 1); each loads the models, whose tables are memory-mapped",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="encode calls at once per process, and most threads per call (default: the cores)",
    )
    p.add_argument(
        "--max-inputs", type=_positive_int, default=None, help="most texts per request, else 413 (default: 2048)"
    )
    p.add_argument(
        "--max-length",
        type=_positive_int,
        default=None,
        help="keep each text's first N tokens, every model (default: each model's own; model2vec: 512, others: all)",
    )
    p.add_argument(
        "--max-text-chars",
        type=_positive_int,
        default=None,
        help="most characters per text, else 413 (default: 200000)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=None,
        help="most bytes per request body, else 413 (default: 33554432 (32 MiB))",
    )
    p.add_argument(
        "--index", action="append", default=None, metavar="NAME=DIR", help="serve an index on POST /v1/search"
    )
    p.add_argument("--strict-model", action="store_true", help="with one model, answer 404 to other model names too")
    p.add_argument(
        "--inline-chars",
        type=int,
        default=None,
        metavar="N",
        help="encode requests of at most N characters on the event loop, larger ones in the "
        "thread pool; 0: all in the pool (default: 512)",
    )
    p.add_argument(
        "--no-batching",
        dest="batching",
        action="store_false",
        help="encode each small request alone (default: those ready together as one call)",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "numba", "numpy"),
        default=None,
        help="engine back-end (default: $SSE_NP_BACKEND or auto)",
    )
    p.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        default=None,
        metavar="KEY",
        help="require 'Authorization: Bearer KEY' on every route but /health, repeatable (default: "
        "$SSE_NP_API_KEY, comma-separated; none: no authentication). Prefer the variable: "
        "a command line is visible to other users of the machine",
    )
    p.add_argument(
        "--client-timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="seconds a client has to send a whole request, from connecting or from its previous "
        "response; idle connections are closed after it (default: 15)",
    )
    p.add_argument(
        "--max-connections",
        type=_positive_int,
        default=None,
        help="most open connections per process; at the cap a new one evicts the longest idle (default: 1024)",
    )
    p.add_argument(
        "--max-bytes-in-flight",
        type=_positive_int,
        default=None,
        help="request bytes being parsed and encoded at once per process; more wait (default: 67108864 (64 MiB))",
    )
    p.add_argument(
        "--drain-timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="at SIGTERM, most seconds requests in flight get to finish (default: 30)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="server log level (default: info)",
    )
    p.set_defaults(func=_serve)


def _bench(args: argparse.Namespace) -> int:
    from .bench import run_command

    return run_command(args)


def _serve(args: argparse.Namespace) -> int:
    from .serve import run

    return run(args)

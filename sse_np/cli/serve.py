"""``sse-np serve``: the embeddings server (:mod:`sse_np.serve`, the ``serve`` extra)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT."""
    from .. import serve  # names the 'serve' extra when starlette is missing
    from ..settings import api_keys

    limits = {
        key: getattr(args, key)
        for key in (
            "max_inputs",
            "max_text_chars",
            "max_body_bytes",
            "inline_chars",
            "client_timeout",
            "max_connections",
            "max_bytes_in_flight",
        )
        if getattr(args, key) is not None
    }  # unset: the defaults of sse_np.serve
    config = serve.ServeConfig(
        models=list(args.model or []),
        threads=args.threads,
        strict_model=args.strict_model,
        batching=args.batching,
        backend=args.backend,
        api_keys=args.api_keys or api_keys(),
        **limits,
    )
    serve.run(
        config,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        graceful_timeout=args.drain_timeout,
    )
    return 0

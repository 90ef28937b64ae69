"""``sse-np serve``: the embeddings server (:mod:`sse_np.serve`, the ``serve`` extra)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT."""
    _refuse_busy_port(args.host, args.port)  # one line instead of uvicorn's ERROR and exit 3
    from .. import serve  # names the 'serve' extra when starlette is missing
    from ..settings import api_keys

    limits = {
        key: getattr(args, key)
        for key in (
            "max_inputs",
            "max_text_chars",
            "max_body_bytes",
            "inline_chars",
            "max_length",
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
        indexes=list(args.index or []),
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


def _refuse_busy_port(host: str, port: int) -> None:
    """OSError (shown as ``sse-np: error: ...``) when ``host:port`` cannot be bound, e.g. already in use."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

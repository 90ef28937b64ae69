"""Serving with uvicorn: :func:`run` (what ``sse-np serve`` calls)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from typing import Any

from ..errors import missing_extra
from .application import app_from
from .config import CONFIG_ENV, DEFAULT_DRAIN_TIMEOUT, ServeConfig


def run(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    log_level: str = "info",
    graceful_timeout: float | None = DEFAULT_DRAIN_TIMEOUT,
) -> None:
    """Serve with uvicorn until SIGTERM/SIGINT (requests in flight finish first).

    Parameters
    ----------
    config : ServeConfig
        Models and limits; ``client_timeout`` and ``max_connections`` apply to the connections
        (:mod:`sse_np.serve.connections`).
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
        raise missing_extra("sse_np.serve", "serve") from None
    from .connections import configure

    configure(config.client_timeout, config.max_connections)
    options: dict[str, Any] = dict(
        http="sse_np.serve.connections:GuardedAuto",  # client deadline and connection cap (by name: workers too)
        timeout_keep_alive=config.client_timeout,
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
        application = app_from(config)
        banner(", ".join(application.state.sse_np.models))
        uvicorn.run(application, **options)

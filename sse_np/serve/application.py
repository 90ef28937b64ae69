"""The server as an ASGI app: :func:`app`, and :func:`create_app` for ``uvicorn --factory``."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware

from ..settings import serve_config
from .auth import BearerAuth
from .batching import ServerState
from .config import (
    DEFAULT_INLINE_CHARS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_BYTES_IN_FLIGHT,
    DEFAULT_MAX_INPUTS,
    DEFAULT_MAX_TEXT_CHARS,
    ServeConfig,
    load_indexes,
    load_models,
    non_negative,
    positive,
)
from .metrics import Observe
from .routes import build_routes

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
    indexes: Any = None,
    max_length: int | None = None,
    api_keys: list[str] | tuple[str, ...] = (),
    max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT,
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
    indexes : mapping or sequence, optional
        Saved :class:`sse_np.Index` folders served on ``POST /v1/search``:
        ``"NAME=DIR"`` strings or ``{name: Index or folder}``; each opens
        with the served model it was built with.
    max_length : int, optional
        Every model's default ``max_length`` (tokens kept per text); default
        each model's own (model2vec: 512, others: all).
    api_keys : list of str
        When given, every route but ``/health`` needs ``Authorization: Bearer KEY`` with one of
        them (else 401, OpenAI's error shape). Compared in constant time; never logged.
    max_bytes_in_flight : int
        Request bytes (bodies over 64 KiB) read, parsed and encoded at once; later requests wait.

    Returns
    -------
    starlette.applications.Starlette
    """
    config = ServeConfig(
        models=[],
        threads=threads,
        max_inputs=positive(max_inputs, "max_inputs"),
        max_text_chars=positive(max_text_chars, "max_text_chars"),
        max_body_bytes=positive(max_body_bytes, "max_body_bytes"),
        strict_model=strict_model,
        inline_chars=non_negative(inline_chars, "inline_chars"),
        batching=batching,
        backend=backend,
        api_keys=list(api_keys),
        max_bytes_in_flight=positive(max_bytes_in_flight, "max_bytes_in_flight"),
    )
    if any(not isinstance(key, str) or not key or key != key.strip() for key in config.api_keys):
        raise ValueError("api_keys must be non-empty strings without surrounding spaces")
    loaded = load_models(models, threads, backend)
    if max_length is not None:  # each model's default for every request (model2vec's is 512)
        for model in loaded.values():
            model.max_length = max_length
    state = ServerState(loaded, config)
    state.indexes = load_indexes(indexes, state.models)

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

    middleware = [Middleware(Observe, state=state)]  # outermost: 401s are counted too
    if config.api_keys:
        middleware.append(Middleware(BearerAuth, keys=config.api_keys))
    application = Starlette(routes=build_routes(state), middleware=middleware, lifespan=lifespan)
    application.state.sse_np = state
    return application


def _drain_on_signals(state: ServerState) -> Callable[[], None]:
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
    config = ServeConfig(**serve_config())
    with contextlib.suppress(ImportError):  # uvicorn's worker: its connections' limits in this process
        from .connections import configure

        configure(config.client_timeout, config.max_connections)
    return app_from(config)


def app_from(config: ServeConfig) -> Starlette:
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
        indexes=config.indexes,
        max_length=config.max_length,
        api_keys=config.api_keys,
        max_bytes_in_flight=config.max_bytes_in_flight,
    )

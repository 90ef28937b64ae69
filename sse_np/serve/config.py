"""The server's configuration: limits and their defaults, and the models to serve.

Nothing here needs the web stack, so a configuration can be built and sent
to worker processes (as JSON in ``$SSE_NP_SERVE_CONFIG``) before it loads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..settings import SERVE_CONFIG

#: Environment variable carrying the JSON configuration to :func:`create_app` (``--workers`` > 1).
CONFIG_ENV = SERVE_CONFIG

DEFAULT_MAX_INPUTS = 2048  # OpenAI's own limit per request
DEFAULT_MAX_TEXT_CHARS = 200_000
DEFAULT_MAX_BODY_BYTES = 32 * 2**20
DEFAULT_INLINE_CHARS = 512  # requests up to this many characters are encoded on the event loop
# A client has this long to send a whole request (head and body), from its connection's start or its
# previous response; idle keep-alive connections are closed after it too (slowloris, idle fd hoarding).
DEFAULT_CLIENT_TIMEOUT = 15.0
DEFAULT_MAX_CONNECTIONS = 1024  # at the cap a new connection evicts the longest-idle one
# Request bytes being parsed or encoded at once; more wait their turn. Encoding peaks at a multiple
# of the body's size (vectors, token ids, the float JSON answer): this bounds the server's memory.
DEFAULT_MAX_BYTES_IN_FLIGHT = 64 * 2**20
DEFAULT_DRAIN_TIMEOUT = 30.0  # at shutdown, most seconds requests in flight get to finish


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
    indexes: list[str] = field(default_factory=list)  # "NAME=DIR" specs of saved sse_np.Index folders
    max_length: int | None = None  # every model's default token limit (None: each model's own)
    api_keys: list[str] = field(default_factory=list)
    client_timeout: float = DEFAULT_CLIENT_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT


def name_of(spec: str) -> tuple[str, str]:
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


def load_models(models: Any, threads: int | None, backend: str | None) -> dict[str, Any]:
    """The models to serve by name, loaded from paths or hub ids where given as such (see :func:`app`)."""
    from ..defaults import default_model, default_model_path
    from ..model import load

    def one(value: Any) -> Any:
        if isinstance(value, (str, os.PathLike)):
            return load(value, threads=threads, backend=backend)
        return value

    out: dict[str, Any] = {}
    if models is None or (isinstance(models, (list, tuple)) and not models):
        model = default_model() if backend is None else load(default_model_path(), backend=backend)
        out["default"] = model
    elif isinstance(models, Mapping):
        out = {str(name): one(value) for name, value in models.items()}
    else:
        items = [models] if isinstance(models, (str, os.PathLike)) or hasattr(models, "tokenize") else list(models)
        for item in items:
            if not isinstance(item, (str, os.PathLike)):
                name, model = Path(str(item.path)).name or "model", item
            else:
                name, path = name_of(os.fspath(item))
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


def load_indexes(specs: Any, models: dict[str, Any]) -> dict[str, Any]:
    """``{name: Index}`` from ``"NAME=DIR"`` specs (or a ``{name: Index or dir}`` mapping).

    Each index opens with the served model it was built with (matched by
    fingerprint); one built with none of them is refused at start-up.
    """
    from ..errors import IndexFormatError
    from ..index import Index

    items = dict(specs) if isinstance(specs, Mapping) else dict(_index_spec(s) for s in specs or ())
    out: dict[str, Any] = {}
    for name, where in items.items():
        if isinstance(where, Index):
            out[name] = where
            continue
        errors = []
        for model in models.values():
            try:
                out[name] = Index.load(where, model)
                break
            except IndexFormatError as exc:
                errors.append(str(exc))
                if "another model" not in str(exc):
                    raise
        else:
            raise IndexFormatError(where, f"index {name!r}: built with none of the served models ({errors[-1]})")
    return out


def _index_spec(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--index {spec!r}: expected NAME=DIR")
    return name, path


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def non_negative(value: Any, name: str) -> int:
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def positive(value: Any, name: str) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def positive_seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)

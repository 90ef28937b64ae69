"""Model resolution shared by the framework adapters."""

from __future__ import annotations

import os
from typing import Any

from ..errors import MissingDependencyError, missing_extra


def missing_framework(module: str, extra: str, package: str) -> MissingDependencyError:
    """One-line error for a missing optional framework."""
    return missing_extra(f"sse_np.integrations.{module} ({package})", extra)


def resolve_model(model: Any, threads: int | None, backend: str | None) -> Any:
    """An ``SSEModel`` as given, the default model (None), or ``sse_np.load(path or hub id)``."""
    from ..defaults import default_model, default_model_path
    from ..model import load

    if model is None:
        if threads is None and backend is None:
            return default_model()
        model = default_model_path()
    if isinstance(model, (str, os.PathLike)):
        return load(model, threads=threads, backend=backend)
    if not callable(getattr(model, "encode", None)) or not hasattr(model, "dim"):
        raise TypeError(f"model must be a path, a hub id or an SSEModel, got {type(model).__name__}")
    return model


def check_dim(model: Any, dim: int | None) -> int:
    """The output width: ``dim`` if given (1..D), else the model's full width D."""
    native = int(model.dim)
    if dim is None:
        return native
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= native:
        raise ValueError(f"dim must be an int in 1..{native} (the model's width), got {dim!r}")
    return dim


def check_texts(texts: Any, name: str) -> list[str]:
    """A list of str; a bare str is refused (it would be embedded character by character)."""
    if isinstance(texts, str):
        raise TypeError(f"{name} takes a list of texts, got a str (use the query method for one text)")
    return list(texts)

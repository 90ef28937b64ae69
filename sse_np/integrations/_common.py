"""Model resolution shared by the framework adapters."""

from __future__ import annotations

import os
import threading
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


def model_ref(model: Any) -> str | None:
    """What a store records to rebuild the model: None (the default model), a hub id or path as given,
    or a loaded model's folder."""
    if model is None or isinstance(model, str):
        return model
    if isinstance(model, os.PathLike):
        return os.fspath(model)
    return str(getattr(model, "path", model))


class StoreEmbedder:
    """The part every store adapter shares: a model, a width, and the config a store persists."""

    def __init__(
        self,
        model: str | os.PathLike[str] | Any | None = None,
        dim: int | None = None,
        batch_size: int = 1024,
        normalize: bool = True,
        threads: int | None = None,
        backend: str | None = None,
    ) -> None:
        self.model_ref = model_ref(model)
        self.model = resolve_model(model, threads, backend)
        self.dim = check_dim(self.model, dim)
        self.batch_size = batch_size
        self.normalize = normalize

    def encode(self, texts: Any, name: str = "texts") -> Any:
        """float32 array (n, dim), one row per text, in order."""
        return self.model.encode(
            check_texts(texts, name), self.dim, batch_size=self.batch_size, normalize=self.normalize
        )

    def config(self) -> dict[str, Any]:
        """What identifies the vectors: the model, the width and whether they are unit length."""
        return {"model": self.model_ref, "dim": self.dim, "normalize": self.normalize}


def check_same_config(where: str, stored: dict[str, Any], mine: dict[str, Any]) -> None:
    """Refuse to mix vectors of another model or width into ``where``."""
    keys = ("model", "dim", "normalize")
    if any(stored.get(k) != mine.get(k) for k in keys):
        was = ", ".join(f"{k}={stored.get(k)!r}" for k in keys)
        now = ", ".join(f"{k}={mine.get(k)!r}" for k in keys)
        raise ValueError(f"{where} holds vectors of {was}; this embedder gives {now}: they would not be comparable")


# Stores rebuild an embedding function from its recorded config again and again (Chroma on each
# collection handle, LanceDB on each table open): each model is loaded once per process.
_SHARED: dict[tuple[Any, ...], Any] = {}
_SHARED_LOCK = threading.Lock()


def shared_model(ref: str | None, threads: int | None = None, backend: str | None = None) -> Any:
    """``resolve_model(ref, threads, backend)``, loaded once per process for each (ref, threads, backend)."""
    key = (ref, threads, backend)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = resolve_model(ref, threads, backend)
        return _SHARED[key]

"""What every command shares: loading the ``--model``."""

from __future__ import annotations

from typing import Any


def load_model(path: str | None, threads: int | None = None) -> Any:
    """``--model`` (default: the default model), with ``--threads`` applied."""
    from ..defaults import default_model
    from ..model import load

    if path is None and threads is None:
        return default_model()
    # --threads gets a model of its own: the shared default model keeps its setting for later callers in-process
    model = load(path if path is not None else default_model().path)
    if threads is not None:
        model.threads = threads
    return model

"""What every command shares: loading the ``--model``."""

from __future__ import annotations

from typing import Any


def load_model(path: str | None, threads: int | None = None) -> Any:
    """``--model`` (default: the default model), with ``--threads`` applied."""
    from ..defaults import default_model
    from ..model import load

    model = default_model() if path is None else load(path)
    if threads is not None:
        model.threads = threads
    return model

"""Exceptions raised by sse_np."""

from __future__ import annotations

import os


class ModelLoadError(ValueError):
    """A model folder or weight file is missing, corrupt or inconsistent.

    The message always names the file (or folder) and the problem. It is a
    ``ValueError`` so callers that already catch bad-input errors keep working.
    """


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """No model exists at the requested location (e.g. an empty ``weights/``)."""


class DataError(ValueError):
    """An input file (dataset, texts to encode) is missing or malformed.

    The message names the file and, where it applies, the 1-based line.
    """

    def __init__(self, path: str | os.PathLike[str], message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class MissingDependencyError(ImportError):
    """An optional dependency (an extra of sse_np) is not installed; the message names the extra."""

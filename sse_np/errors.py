"""Exceptions raised by sse_np."""

from __future__ import annotations


class ModelLoadError(ValueError):
    """A model folder or weight file is missing, corrupt or inconsistent.

    The message always names the file (or folder) and the problem. It is a
    ``ValueError`` so callers that already catch bad-input errors keep working.
    """


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """No model exists at the requested location (e.g. an empty ``weights/``)."""

"""Exceptions raised by sse_np."""

from __future__ import annotations

import os

from ._version import __version__


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


def install_hint(extra: str) -> str:
    """Commands that install the optional ``extra``: from a checkout, and from a built wheel."""
    return (
        f"pip install -e '.[{extra}]' in a checkout of sse_np, "
        f"or pip install 'sse_np-{__version__}-py3-none-any.whl[{extra}]' from the wheel"
    )


def missing_extra(what: str, extra: str) -> MissingDependencyError:
    """The one-line error for ``what`` (a feature, a module) whose ``extra`` is not installed."""
    return MissingDependencyError(f"{what} needs the '{extra}' extra: {install_hint(extra)}")


class IndexFormatError(DataError):
    """A saved :class:`sse_np.Index` is corrupt, of another format version, or built with another model."""

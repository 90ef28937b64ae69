"""Vector output for bulk embedding: ``.npy`` and JSONL writers, and atomic files.

Outputs are written to a hidden temporary file beside the destination and
renamed over it only when complete, so an error (or Ctrl-C) never leaves a
half-written file or damages the one already there; a replaced file keeps
its permission bits. An output that is a symlink replaces its target (the
link stays); one that is a device or a pipe (``/dev/null``, ``/dev/stdout``,
a FIFO) is written through, as it cannot be replaced. An output that is one
of the inputs (same path, a hard link or a symlink to it) is refused before
anything is written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import DataError
from .readers import JSONL_SUFFIXES

OUTPUT_FORMATS = ("npy", "jsonl", "parquet")


def output_format(dest: str, fmt: str | None) -> str:
    """``fmt`` if given; else from the destination's suffix (``-`` is JSONL on stdout)."""
    if dest != "-":
        resolve_destination(dest)
    if fmt is not None:
        return fmt
    if dest == "-" or dest.endswith((*JSONL_SUFFIXES, ".json")):
        return "jsonl"
    if dest.endswith(".npy"):
        return "npy"
    if dest.endswith(".parquet"):
        return "parquet"
    raise DataError(dest, "cannot tell the output format from the name; pass --format npy, jsonl or parquet")


# -- outputs -------------------------------------------------------------
@dataclass
class Destination:
    """Where an output goes: ``target`` is the file to replace (a symlink's final target), or the
    device/pipe to write through (``stream``); ``path`` is what the user named."""

    path: Path
    target: Path
    stream: bool


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _input_stat(source: str | os.PathLike) -> os.stat_result | None:
    try:
        if str(source) == "-":
            return os.fstat(sys.stdin.fileno())  # `< file` redirects count too
        return os.stat(source)
    except (OSError, ValueError, AttributeError):  # no such input (reported later), no fd for stdin
        return None


def resolve_destination(
    dest: str, inputs: Iterable[str | os.PathLike] = (), model: object | None = None
) -> Destination:
    """Check an output path before any work, and decide how it is written.

    Parameters
    ----------
    dest : str
        The output path.
    inputs : iterable of paths
        Files the command reads (``-`` is standard input); an output that is
        one of them (same path, a hard link or a symlink) is refused.
    model : SSEModel, optional
        The loaded model: its files (see ``SSEModel.files``) are refused the
        same way, and so is any new file in its folders.

    Returns
    -------
    Destination

    Raises
    ------
    sse_np.DataError
        A folder, a missing folder, or one of the inputs.
    """
    path = Path(dest)
    target = Path(os.path.realpath(path))  # every symlink followed; a dangling one gives its would-be target
    try:
        info: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise DataError(dest, f"cannot be written ({exc.strerror or exc})") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise DataError(dest, "is a folder; name the output file")
    if info is None and not target.parent.is_dir():
        raise DataError(dest, f"folder {path.parent if not path.is_symlink() else target.parent} does not exist")
    if model is not None:
        _refuse_model_paths(dest, target, info, model)
    if info is not None:
        for source in inputs:
            seen = _input_stat(source)
            if seen is not None and _same_file(seen, info):
                how = (
                    "is"
                    if os.path.abspath(dest) == os.path.abspath(source)
                    else "is (through a symlink)"
                    if str(source) != "-" and os.path.realpath(source) == str(target)
                    else "is a hard link to"
                )
                what = "standard input" if str(source) == "-" else str(source)
                raise DataError(
                    dest, f"{how} the input {what}; refusing to overwrite an input, name another output file"
                )
    # /dev/stdout and friends name an open descriptor: write through it, never rename over what it points at.
    stream = (info is not None and not stat.S_ISREG(info.st_mode)) or (
        path.is_symlink() and str(path).startswith(("/dev/", "/proc/"))
    )
    return Destination(path, path if stream else target, stream)


def _refuse_model_paths(dest: str, target: Path, info: os.stat_result | None, model: object) -> None:
    """A model's own files are never outputs: neither one of them (by path, symlink or hard link) nor a new file
    beside them (it could add a second layout, or shadow a config)."""
    folders = set(model.folders())  # type: ignore[attr-defined]
    if target.parent in folders:
        raise DataError(dest, f"is in the model folder {target.parent}; a model's files are never outputs")
    if info is None:
        return
    for path in model.files():  # type: ignore[attr-defined]
        seen = _input_stat(path)
        if seen is not None and _same_file(seen, info):
            raise DataError(dest, f"is the model's file {path}; a model's files are never outputs")


def check_destination(dest: str) -> Path:
    """``dest`` as a Path, if it can be a file we write (its folder exists; it is not a folder)."""
    resolve_destination(dest)
    return Path(dest)


class AtomicOutput:
    """A temporary file beside ``dest``, renamed over it by :meth:`commit`; removed on :meth:`abort`.

    A destination that is a device or a pipe (``/dev/null``, ``/dev/stdout``,
    a FIFO) is opened and written through instead. With ``open_file=False``
    nothing is opened: a writer that takes a file name writes ``path``; the
    temporary name keeps ``dest``'s suffix, so e.g. matplotlib picks the format.
    """

    def __init__(
        self, dest: str | Destination, inputs: Iterable[str | os.PathLike] = (), *, open_file: bool = True
    ) -> None:
        self.where = dest if isinstance(dest, Destination) else resolve_destination(str(dest), inputs)
        self.dest = self.where.target
        self.tmp: Path | None = None
        self.file: IO[bytes] | None = None
        if self.where.stream:
            self.path = self.where.path
            if open_file:
                try:
                    self.file = open(self.where.path, "wb")  # noqa: SIM115 (closed by commit/abort)
                except OSError as exc:
                    raise DataError(self.where.path, f"cannot be written ({exc.strerror or exc})") from None
            return
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.dest.name}.", suffix=".partial" + self.dest.suffix, dir=self.dest.parent
            )
        except OSError as exc:
            raise DataError(self.where.path, f"cannot write in {self.dest.parent} ({exc.strerror or exc})") from None
        _PARTIALS.add(tmp)  # a signal before the caller's try/abort still finds it (remove_partials)
        self.tmp = self.path = Path(tmp)
        if open_file:
            self.file = _fdopen(fd, "w+b")
        else:  # a writer that takes a file name writes self.path
            os.close(fd)

    def commit(self) -> None:
        if self.tmp is None:
            if self.file is not None:
                self.file.close()
            return
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
        else:
            with open(self.tmp, "rb") as written:  # a path writer's bytes reach the disk before the rename
                os.fsync(written.fileno())
        try:  # replacing a file keeps its permission bits; a new one gets the usual 0666 & ~umask
            mode = stat.S_IMODE(os.stat(self.dest).st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        os.chmod(self.tmp, mode)
        os.replace(self.tmp, self.dest)
        _PARTIALS.discard(str(self.tmp))

    def abort(self) -> None:
        try:
            if self.file is not None:
                self.file.close()  # flushes: on a full disk this raises ENOSPC again
        except OSError:
            pass  # the error that got us here is the one to report
        finally:
            if self.tmp is not None:
                self.tmp.unlink(missing_ok=True)
                _PARTIALS.discard(str(self.tmp))

    def failed(self, exc: OSError) -> DataError:
        """A write error as a one-line error naming the output (``[Errno 28]`` alone names no file)."""
        return DataError(self.where.path, f"cannot be written ({exc.strerror or exc})")

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around writes: an OSError (a full disk) becomes :meth:`failed`'s error; a closed pipe stays itself."""
        try:
            yield
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self.failed(exc) from None


_fdopen = os.fdopen  # the seam a test uses to fill the disk
_PARTIALS: set[str] = set()  # temporary files made and neither committed nor aborted yet


def remove_partials() -> None:
    """Remove every temporary output not yet committed (a command interrupted by a signal, on its way out)."""
    for name in list(_PARTIALS):
        with contextlib.suppress(OSError):
            os.unlink(name)
        _PARTIALS.discard(name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class NpyWriter:
    """Rows appended to a ``.npy`` file whose header gets the final row count at the end.

    The header is written at a fixed size (128 bytes: room for any row count)
    so it can be rewritten in place without moving the data.
    """

    HEADER_BYTES = 128

    def __init__(self, file: IO[bytes], dim: int, dtype: str = "<f4") -> None:
        self.file, self.dim, self.rows = file, dim, 0
        self.dtype = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
        file.write(self._header(0))

    def _header(self, rows: int) -> bytes:
        text = repr({"descr": self.dtype.str, "fortran_order": False, "shape": (rows, self.dim)})
        head = b"\x93NUMPY\x01\x00"
        body_len = self.HEADER_BYTES - len(head) - 2
        body = text.encode("latin1").ljust(body_len - 1) + b"\n"
        return head + len(body).to_bytes(2, "little") + body

    def write(self, vectors: np.ndarray, kept: list | None = None) -> None:
        self.file.write(np.ascontiguousarray(vectors, dtype=self.dtype).tobytes())
        self.rows += vectors.shape[0]

    def close(self) -> None:
        self.file.seek(0)
        self.file.write(self._header(self.rows))
        self.file.seek(0, io.SEEK_END)


class JsonlWriter:
    """One JSON object a row: the kept input fields and ``"embedding"``.

    Floats are printed with 9 significant digits, which read back as the
    same float32 exactly (and are 2.5x faster to write than Python's repr);
    quantized codes (an integer ``dtype``) as integers.
    """

    def __init__(self, file: IO[bytes], dim: int, dtype: str = "<f4") -> None:
        self.file, self.dim, self.rows = file, dim, 0
        number = "%d" if np.dtype(dtype).kind in "iu" else "%.9g"
        self._row = "[" + ",".join([number] * dim) + "]"

    def write(self, vectors: np.ndarray, kept: list | None = None) -> None:
        fmt = self._row
        lines = []
        for i, values in enumerate(vectors.tolist()):
            extra = kept[i] if kept else None
            prefix = json.dumps(extra, ensure_ascii=False)[1:-1] + ", " if extra else ""
            lines.append("{" + prefix + '"embedding": ' + fmt % tuple(values) + "}\n")
        self.file.write("".join(lines).encode("utf-8"))
        self.rows += vectors.shape[0]

    def close(self) -> None:
        self.file.flush()

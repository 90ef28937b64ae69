"""Streaming text input and vector output for ``sse-np encode``.

Inputs are read a chunk of lines at a time, so files larger than memory
stream through; every problem names the file and line. Any readable file
works, also a named pipe or ``<(...)`` (read as a stream, no progress
percentage). Outputs are written to a hidden temporary file beside the
destination and renamed over it only when complete, so an error (or Ctrl-C)
never leaves a half-written file or damages the one already there; a
replaced file keeps its permission bits. An output that is a symlink
replaces its target (the link stays); one that is a device or a pipe
(``/dev/null``, ``/dev/stdout``, a FIFO) is written through, as it cannot be
replaced. An output that is one of the inputs (same path, a hard link or a
symlink to it) is refused before anything is written.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import DataError

INPUT_FORMATS = ("lines", "jsonl", "parquet")
OUTPUT_FORMATS = ("npy", "jsonl", "parquet")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass
class Chunk:
    """Consecutive input records: their texts, kept fields and first line number (1-based)."""

    texts: list[str]
    first_line: int
    kept: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # line number of each record


def input_format(source: str, fmt: str | None, field_name: str | None) -> str:
    """``fmt`` if given; else JSONL for ``*.jsonl``/``*.ndjson`` (optionally ``.gz``) or when a field is named."""
    if fmt is not None:
        return fmt
    if source != "-" and (source.endswith(".parquet") or Path(source).is_dir()):
        return "parquet"  # a Parquet file or a folder of them (sse_np.parquet)
    name = source[:-3] if source.endswith(".gz") else source
    return "jsonl" if field_name is not None or name.endswith(_JSONL_SUFFIXES) else "lines"


def output_format(dest: str, fmt: str | None) -> str:
    """``fmt`` if given; else from the destination's suffix (``-`` is JSONL on stdout)."""
    if dest != "-":
        resolve_destination(dest)
    if fmt is not None:
        return fmt
    if dest == "-" or dest.endswith(_JSONL_SUFFIXES + (".json",)):
        return "jsonl"
    if dest.endswith(".npy"):
        return "npy"
    if dest.endswith(".parquet"):
        return "parquet"
    raise DataError(dest, "cannot tell the output format from the name; pass --format npy, jsonl or parquet")


class _Counted:
    """A binary stream that counts the bytes read from it (gzip reads only ``read``)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.count = raw, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data

    def close(self) -> None:
        self.raw.close()


def _open_binary(source: str) -> tuple[IO[bytes], int | None, _Counted | None]:
    """The input as a binary stream, its size in bytes when known (for progress), and the gzip byte counter."""
    if source == "-":
        stdin = sys.stdin
        # A replaced sys.stdin (a StringIO, say) has no bytes underneath.
        return (stdin.buffer if hasattr(stdin, "buffer") else io.BytesIO(stdin.read().encode("utf-8"))), None, None
    try:
        info = os.stat(source)
    except FileNotFoundError:
        raise DataError(source, "no such file") from None
    except OSError as exc:
        raise DataError(source, f"cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(source, "is a folder; name a file (or - for stdin)")
    try:  # regular files, and streams: a named pipe, <(...) (/dev/fd/N), a device
        raw = open(source, "rb")
    except OSError as exc:
        raise DataError(source, f"cannot read ({exc.strerror or exc})") from None
    size = info.st_size if stat.S_ISREG(info.st_mode) else None
    if source.endswith(".gz"):
        counted = _Counted(raw)
        return gzip.GzipFile(fileobj=counted, mode="rb"), None, counted  # type: ignore[arg-type]
    return raw, size, None


def read_chunks(
    source: str,
    fmt: str,
    field_name: str = "text",
    keep: tuple[str, ...] = (),
    chunk_lines: int = 8192,
    progress: Progress | None = None,
) -> Iterator[Chunk]:
    """Yield the input's texts a chunk at a time.

    Parameters
    ----------
    source : str
        A file path (``.gz`` is decompressed) or ``-`` for stdin.
    fmt : {"lines", "jsonl"}
        ``lines``: every line is a text (empty lines are empty texts; only
        ``\\n`` ends a line, a ``\\r`` before it is dropped). ``jsonl``: every
        line is a JSON object whose ``field_name`` holds the text.
    field_name : str
        JSONL field with the text.
    keep : tuple of str
        JSONL fields copied to each record's ``kept`` dict when present.
    chunk_lines : int
        Records per chunk (bounds memory).
    progress : Progress, optional
        Told the bytes read.

    Raises
    ------
    sse_np.DataError
        Invalid UTF-8, invalid JSON, a missing or non-string field: the
        message names the file and line.
    """
    stream, size, counted = _open_binary(source)
    if progress is not None:
        progress.total_bytes = size
    name = "<stdin>" if source == "-" else source
    try:
        chunk = Chunk([], 1)
        for number, raw in enumerate(_lines(stream, name), start=1):
            if progress is not None:
                progress.bytes_read += len(raw)
            text, kept = _parse_line(raw, number, name, fmt, field_name, keep)
            chunk.texts.append(text)
            chunk.lines.append(number)
            if fmt == "jsonl":
                chunk.kept.append(kept)
            if len(chunk.texts) >= chunk_lines:
                yield chunk
                chunk = Chunk([], number + 1)
        if counted is not None and counted.count == 0:
            raise DataError(name, "empty file, not gzip data (a .gz input must be gzip-compressed)")
        if chunk.texts:
            yield chunk
    finally:
        if source != "-":
            stream.close()


def _lines(stream: IO[bytes], name: str) -> Iterator[bytes]:
    """The stream's lines; a read or decompression failure names the line being read."""
    number = 0
    while True:
        try:
            raw = stream.readline()
        except EOFError as exc:  # gzip: the stream ends before the end-of-stream marker
            raise DataError(name, f"truncated gzip data ({exc})", number + 1) from None
        except gzip.BadGzipFile as exc:
            raise DataError(name, f"not gzip data ({exc})", number + 1) from None
        except zlib.error as exc:
            raise DataError(name, f"corrupt gzip data ({exc})", number + 1) from None
        except OSError as exc:
            raise DataError(name, f"read error ({exc.strerror or exc})", number + 1) from None
        if not raw:
            return
        number += 1
        yield raw


def json_line(line: str, name: str, number: int) -> Any:
    """``json.loads(line)``; every way Python's json refuses a line is a DataError naming ``name:number``.

    Besides ``JSONDecodeError``, ``json`` raises ``RecursionError`` for deep
    nesting and a plain ``ValueError`` for integers longer than
    ``sys.get_int_max_str_digits()``; both are the input's fault.

    Parameters
    ----------
    line : str
        One line of a JSONL file.
    name : str
        The file, for the message.
    number : int
        1-based line number.

    Returns
    -------
    The decoded value.
    """
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(name, f"invalid JSON ({exc.msg} at column {exc.colno})", number) from None
    except RecursionError:
        raise DataError(name, "invalid JSON (nested too deeply to read)", number) from None
    except ValueError as exc:  # e.g. an integer longer than Python converts (sys.get_int_max_str_digits)
        raise DataError(name, f"invalid JSON ({str(exc).split(';')[0]})", number) from None


def _parse_line(raw: bytes, number: int, name: str, fmt: str, field_name: str, keep: tuple[str, ...]):
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            name, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})", number
        ) from None
    if fmt == "lines":
        return line, None
    if not line.strip():
        raise DataError(name, "empty line; JSONL needs one JSON object per line", number)
    record = json_line(line, name, number)
    if not isinstance(record, dict):
        raise DataError(name, f"expected a JSON object, got {type(record).__name__}", number)
    if "," in field_name:
        return join_fields(record, split_fields(field_name), name, number), {k: record[k] for k in keep if k in record}
    if field_name not in record:
        fields = ", ".join(map(repr, record)) or "none"
        raise DataError(name, f"no field {field_name!r} (fields: {fields}); choose one with --field", number)
    text = record[field_name]
    if not isinstance(text, str):
        raise DataError(name, f"field {field_name!r} is {type(text).__name__}, expected a string", number)
    kept = {k: record[k] for k in keep if k in record}
    for key, value in kept.items():
        _check_writable(name, number, key, value)
    return text, kept


def _check_writable(name: str, number: int, key: str, value: Any) -> None:
    """Refuse a kept field that strict UTF-8 JSON output cannot hold (NaN/Infinity, lone surrogates)."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start] if isinstance(exc.object, str) else "?"
        raise DataError(
            name,
            f"field {key!r} holds a lone surrogate {bad!r} (not valid Unicode), which cannot "
            "be written as UTF-8 JSON; clean the input or leave the field out with --keep",
            number,
        ) from None
    except (ValueError, RecursionError):
        raise DataError(
            name,
            f"field {key!r} holds NaN or Infinity (Python's json reads them; strict JSON output "
            "cannot hold them); fix the input or leave the field out with --keep",
            number,
        ) from None


# -- several text fields (--field title,text) ------------------------------
def split_fields(spec: str) -> tuple[str, ...]:
    """``"title,text"`` -> ``("title", "text")`` (empty names dropped)."""
    fields = tuple(part.strip() for part in spec.split(",") if part.strip())
    if not fields:
        raise ValueError(f"--field {spec!r} names no field")
    return fields


def join_fields(record: dict[str, Any], fields: tuple[str, ...], name: str, number: int) -> str:
    """The record's text from several fields, joined as the evaluation joins a BEIR document.

    ``(title + " " + text).strip()`` for ``("title", "text")``: the values in
    the given order, separated by one space, then stripped; a missing or
    null field counts as empty, but a record where all of them are missing
    is an error, as is a value that is not a string.
    """
    values = []
    for key in fields:
        value = record.get(key)
        if value is None:
            value = ""
        elif not isinstance(value, str):
            raise DataError(name, f"field {key!r} is {type(value).__name__}, expected a string", number)
        values.append(value)
    if all(record.get(key) is None for key in fields):
        have = ", ".join(map(repr, record)) or "none"
        raise DataError(name, f"none of the fields {', '.join(map(repr, fields))} is present (fields: {have})", number)
    return " ".join(values).strip()


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


def resolve_destination(dest: str, inputs: Iterable[str | os.PathLike] = ()) -> Destination:
    """Check an output path before any work, and decide how it is written.

    Parameters
    ----------
    dest : str
        The output path.
    inputs : iterable of paths
        Files the command reads (``-`` is standard input); an output that is
        one of them (same path, a hard link or a symlink) is refused.

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
                    self.file = open(self.where.path, "wb")
                except OSError as exc:
                    raise DataError(self.where.path, f"cannot be written ({exc.strerror or exc})") from None
            return
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.dest.name}.", suffix=".partial" + self.dest.suffix, dir=self.dest.parent
            )
        except OSError as exc:
            raise DataError(self.where.path, f"cannot write in {self.dest.parent} ({exc.strerror or exc})") from None
        self.tmp = self.path = Path(tmp)
        if open_file:
            self.file = os.fdopen(fd, "w+b")
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

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


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


# -- progress ------------------------------------------------------------
class Progress:
    """Progress of ``sse-np encode``: bytes of the input (when its size is known) and texts written.

    A tqdm bar on a terminal, plain lines (at most one a second) otherwise;
    see :class:`sse_np.progress.Progress`.
    """

    def __init__(self, enabled: bool, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.total_bytes: int | None = None
        self.bytes_read = 0
        self.rows = 0
        self._bar = None
        self._shown_bytes = 0

    def update(self, rows: int, final: bool = False) -> None:
        from .progress import Progress as Bar

        self.rows = rows
        if not self.enabled:
            return
        if self._bar is None:
            by_bytes = bool(self.total_bytes)
            self._bar = Bar(
                self.total_bytes if by_bytes else None, "encode", unit="B" if by_bytes else "texts", stream=self.stream
            )
            self._by_bytes = by_bytes
        if self._by_bytes:
            step, self._shown_bytes = self.bytes_read - self._shown_bytes, self.bytes_read
        else:
            step, self._shown_bytes = rows - self._shown_bytes, rows
        self._bar.update(step, f"{rows:,} texts" if self._by_bytes else None)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

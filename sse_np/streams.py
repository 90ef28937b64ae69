"""Streaming text input and vector output for ``sse-np encode``.

Inputs are read a chunk of lines at a time, so files larger than memory
stream through; every problem names the file and line. Outputs are written
to a hidden temporary file beside the destination and renamed over it only
when complete, so an error (or Ctrl-C) never leaves a half-written file or
damages the one already there.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
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
        check_destination(dest)
    if fmt is not None:
        return fmt
    if dest == "-" or dest.endswith(_JSONL_SUFFIXES + (".json",)):
        return "jsonl"
    if dest.endswith(".npy"):
        return "npy"
    if dest.endswith(".parquet"):
        return "parquet"
    raise DataError(dest, "cannot tell the output format from the name; pass --format npy, jsonl or parquet")


def _open_binary(source: str) -> tuple[IO[bytes], int | None]:
    """The input as a binary stream and its size in bytes when known (for progress)."""
    if source == "-":
        stdin = sys.stdin
        # A replaced sys.stdin (a StringIO, say) has no bytes underneath.
        return (stdin.buffer if hasattr(stdin, "buffer") else io.BytesIO(stdin.read().encode("utf-8"))), None
    path = Path(source)
    if not path.is_file():
        raise DataError(source, "no such file")
    size = path.stat().st_size
    if source.endswith(".gz"):
        return gzip.open(path, "rb"), None
    return open(path, "rb"), size


def read_chunks(source: str, fmt: str, field_name: str = "text", keep: tuple[str, ...] = (),
                chunk_lines: int = 8192, progress: Progress | None = None) -> Iterator[Chunk]:
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
    stream, size = _open_binary(source)
    if progress is not None:
        progress.total_bytes = size
    name = "<stdin>" if source == "-" else source
    try:
        chunk = Chunk([], 1)
        for number, raw in enumerate(stream, start=1):
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
        if chunk.texts:
            yield chunk
    finally:
        if source != "-":
            stream.close()


def _parse_line(raw: bytes, number: int, name: str, fmt: str, field_name: str, keep: tuple[str, ...]):
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(name, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                        number) from None
    if fmt == "lines":
        return line, None
    if not line.strip():
        raise DataError(name, "empty line; JSONL needs one JSON object per line", number)
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(name, f"invalid JSON ({exc.msg} at column {exc.colno})", number) from None
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
    return text, {k: record[k] for k in keep if k in record}


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
        raise DataError(name, f"none of the fields {', '.join(map(repr, fields))} is present (fields: {have})",
                        number)
    return " ".join(values).strip()


# -- outputs -------------------------------------------------------------
def check_destination(dest: str) -> Path:
    """``dest`` as a Path, if it can be a file we write (its folder exists; it is not a folder)."""
    path = Path(dest)
    if path.is_dir():
        raise DataError(dest, "is a folder; name the output file")
    if not path.parent.is_dir():
        raise DataError(dest, f"folder {path.parent} does not exist")
    return path


class AtomicOutput:
    """A temporary file beside ``dest``, renamed over it by :meth:`commit`; removed on :meth:`abort`."""

    def __init__(self, dest: str) -> None:
        self.dest = check_destination(dest)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.dest.name}.", suffix=".partial", dir=self.dest.parent)
        self.tmp = Path(tmp)
        self.file: IO[bytes] = os.fdopen(fd, "w+b")

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(self.tmp, self.dest)

    def abort(self) -> None:
        self.file.close()
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

    def __init__(self, file: IO[bytes], dim: int) -> None:
        self.file, self.dim, self.rows = file, dim, 0
        file.write(self._header(0))

    def _header(self, rows: int) -> bytes:
        text = repr({"descr": "<f4", "fortran_order": False, "shape": (rows, self.dim)})
        head = b"\x93NUMPY\x01\x00"
        body_len = self.HEADER_BYTES - len(head) - 2
        body = text.encode("latin1").ljust(body_len - 1) + b"\n"
        return head + len(body).to_bytes(2, "little") + body

    def write(self, vectors: np.ndarray, kept: list | None = None) -> None:
        self.file.write(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
        self.rows += vectors.shape[0]

    def close(self) -> None:
        self.file.seek(0)
        self.file.write(self._header(self.rows))
        self.file.seek(0, io.SEEK_END)


class JsonlWriter:
    """One JSON object a row: the kept input fields and ``"embedding"``.

    Floats are printed with 9 significant digits, which read back as the
    same float32 exactly (and are 2.5x faster to write than Python's repr).
    """

    def __init__(self, file: IO[bytes], dim: int) -> None:
        self.file, self.dim, self.rows = file, dim, 0
        self._row = "[" + ",".join(["%.9g"] * dim) + "]"

    def write(self, vectors: np.ndarray, kept: list | None = None) -> None:
        fmt = self._row
        lines = []
        for i, values in enumerate(vectors.tolist()):
            extra = kept[i] if kept else None
            prefix = json.dumps(extra, ensure_ascii=False)[1:-1] + ", " if extra else ""
            lines.append('{' + prefix + '"embedding": ' + fmt % tuple(values) + "}\n")
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
            self._bar = Bar(self.total_bytes if by_bytes else None, "encode", unit="B" if by_bytes else "texts",
                            stream=self.stream)
            self._by_bytes = by_bytes
        if self._by_bytes:
            step, self._shown_bytes = self.bytes_read - self._shown_bytes, self.bytes_read
        else:
            step, self._shown_bytes = rows - self._shown_bytes, rows
        self._bar.update(step, f"{rows:,} texts" if self._by_bytes else None)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

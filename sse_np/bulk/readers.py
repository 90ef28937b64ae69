"""Streaming text input for bulk embedding (``sse-np encode``): plain lines and JSONL.

Inputs are read a chunk of lines at a time, so files larger than memory
stream through; every problem names the file and line. Any readable file
works, also a named pipe or ``<(...)`` (read as a stream, no progress
percentage); ``.gz`` files are decompressed. Parquet input is
:mod:`sse_np.bulk.parquet`, which yields the same :class:`Chunk` objects.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import DataError
from ..jsonl import json_line
from ..progress import Progress

INPUT_FORMATS = ("lines", "jsonl", "parquet")
JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass
class Chunk:
    """Consecutive input records: their texts, kept fields and first line number (1-based)."""

    texts: Sequence[str]  # a list, or Utf8Texts over an Arrow column's buffers
    first_line: int
    kept: Sequence[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # line number of each record


def input_format(source: str, fmt: str | None, field_name: str | None) -> str:
    """``fmt`` if given; else JSONL for ``*.jsonl``/``*.ndjson`` (optionally ``.gz``) or when a field is named."""
    if fmt is not None:
        return fmt
    if source != "-" and (source.endswith(".parquet") or Path(source).is_dir()):
        return "parquet"  # a Parquet file or a folder of them (sse_np.bulk.parquet)
    name = source[:-3] if source.endswith(".gz") else source
    return "jsonl" if field_name is not None or name.endswith(JSONL_SUFFIXES) else "lines"


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
        raw = open(source, "rb")  # noqa: SIM115 (returned open; read_chunks closes it)
    except OSError as exc:
        raise DataError(source, f"cannot read ({exc.strerror or exc})") from None
    size = info.st_size if stat.S_ISREG(info.st_mode) else None
    if source.endswith(".gz"):
        counted = _Counted(raw)
        return gzip.GzipFile(fileobj=counted, mode="rb"), None, counted  # type: ignore[call-overload]
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
        texts: list[str] = []
        kept_rows: list[dict[str, Any]] = []
        lines: list[int] = []
        for number, raw in enumerate(_lines(stream, name), start=1):
            if progress is not None:
                progress.bytes_read += len(raw)
            text, kept = _parse_line(raw, number, name, fmt, field_name, keep)
            texts.append(text)
            lines.append(number)
            if kept is not None:
                kept_rows.append(kept)
            if len(texts) >= chunk_lines:
                yield Chunk(texts, lines[0], kept_rows, lines)
                texts, kept_rows, lines = [], [], []
        if counted is not None and counted.count == 0:
            raise DataError(name, "empty file, not gzip data (a .gz input must be gzip-compressed)")
        if texts:
            yield Chunk(texts, lines[0], kept_rows, lines)
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


def _parse_line(
    raw: bytes, number: int, name: str, fmt: str, field_name: str, keep: tuple[str, ...]
) -> tuple[str, dict[str, Any] | None]:
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

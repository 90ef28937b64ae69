"""Parquet in and out for ``sse-np encode`` (the ``parquet`` extra: pyarrow).

Input is a ``.parquet`` file or a folder of them, read a record batch at a
time (so a file larger than memory streams through) into the same
:class:`sse_np.bulk.readers.Chunk` objects the text/JSONL reader yields; errors
name the file and the 1-based row. Output holds the id, the kept columns
and ``embedding`` as ``fixed_size_list<float32>[dim]``, one row group per
written chunk, in a temporary file renamed over the destination when
complete (:class:`sse_np.bulk.writers.AtomicOutput`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..engine.texts import NotUtf8Error, Utf8Texts
from ..errors import DataError, missing_extra
from ..progress import Progress
from .readers import Chunk

ID_FIELDS = ("_id", "id")  # the id column when --id-field is not given, first found


def require_pyarrow() -> Any:
    """``pyarrow`` (with ``pyarrow.parquet`` loaded), or a one-line error naming the extra."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise missing_extra("Parquet input/output", "parquet") from None
    return pyarrow


def parquet_files(source: str | os.PathLike[str]) -> list[Path]:
    """The Parquet files of ``source``: the file itself, or a folder's ``*.parquet`` files (recursively, sorted).

    Hidden files and those starting with ``_`` (``_SUCCESS``, ``_metadata``,
    partial outputs) are skipped, as Spark and Ray do.
    """
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(source, "no such file or folder")
    files = sorted(
        p
        for p in path.rglob("*.parquet")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    )
    if not files:
        raise DataError(source, "folder holds no .parquet files")
    return files


class KeptRows(Sequence):
    """The kept columns of a chunk: a sequence of row dicts (for JSONL output) over an Arrow table (for Parquet)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._rows: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return self.table.num_rows if self.table.num_columns else 0

    def __getitem__(self, index):
        if self._rows is None:
            self._rows = self.table.to_pylist()
        return self._rows[index]

    def check_json(self, name: str, rows: Sequence[int]) -> None:
        """Refuse, as ``FILE:ROW``, a value strict JSON output cannot hold: NaN/inf, bytes, timestamps, decimals."""
        for number, record in zip(rows, self):
            for key, value in record.items():
                try:
                    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
                except (TypeError, ValueError) as exc:
                    kind = self.table.schema.field(key).type
                    raise DataError(
                        name,
                        f"column {key!r} ({kind}) holds {_unwritable(value, exc)}, which JSON output cannot hold; "
                        "write Parquet output, or leave the column out with --keep",
                        number,
                    ) from None


def _unwritable(value: Any, exc: Exception) -> str:
    if isinstance(value, float):
        return repr(value)  # nan, inf
    if isinstance(exc, UnicodeEncodeError):
        return "a lone surrogate"
    return f"a {type(value).__name__} value" if not isinstance(value, (list, dict)) else "NaN, inf or non-JSON values"


class ArrowChunk(Chunk):
    """A :class:`~sse_np.bulk.readers.Chunk` of one Parquet file; ``source`` names that file for errors."""

    def __init__(self, texts: Sequence[str], first_line: int, kept: KeptRows, lines: list[int], source: str) -> None:
        super().__init__(texts, first_line, kept, lines)
        self.source = source


def _is_string(pa: Any, type_: Any) -> bool:
    return (
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(type_))
    )


def _column_texts(pa: Any, column: Any, key: str, name: str, first_row: int, required: bool) -> Sequence[Any]:
    """A string column as Python strings; non-strings (and nulls when ``required``) are row-numbered errors."""
    if not _is_string(pa, column.type):
        if pa.types.is_null(column.type) and not required:
            return [None] * len(column)
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        row = first_row + int(np.argmax(valid)) if valid.any() else first_row
        raise DataError(name, f"column {key!r} is {column.type}, expected a string", row)
    if required and column.null_count:
        row = first_row + int(np.argmin(column.is_valid().to_numpy(zero_copy_only=False)))
        raise DataError(name, f"column {key!r} is null; every row needs a text", row)
    if required:  # the encoder reads the column's UTF-8 buffer in place
        try:
            return Utf8Texts.from_arrow(column)
        except NotUtf8Error as exc:
            raise DataError(name, f"column {key!r} is not valid UTF-8 ({exc.reason})", first_row + exc.index) from None
    return column.to_pylist()


def batch_texts(batch: Any, fields: Sequence[str], name: str, first_row: int) -> Sequence[str]:
    """The texts of an Arrow record batch or table: one string column, or several joined.

    Several columns are joined as the evaluation joins a BEIR document,
    ``(title + " " + text).strip()`` for ``("title", "text")``: a null value
    counts as empty, but a row whose every column is null is an error.

    Parameters
    ----------
    batch : pyarrow.RecordBatch or pyarrow.Table
        Rows holding the ``fields`` columns.
    fields : sequence of str
        Text columns, in joining order.
    name : str
        File named in errors.
    first_row : int
        1-based row number of the batch's first row in that file.

    Returns
    -------
    sequence of str
        One column: a :class:`~sse_np.engine.texts.Utf8Texts` over its buffers
        (no Python string per row); several: a list of the joined strings.
    """
    pa = require_pyarrow()
    columns = []
    for key in fields:
        if key not in batch.schema.names:
            raise DataError(
                name,
                f"no column {key!r} (columns: {', '.join(map(repr, batch.schema.names))}); choose one with --field",
            )
        column = batch.column(key)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        columns.append(_column_texts(pa, column, key, name, first_row, required=len(fields) == 1))
    if len(columns) == 1:
        return columns[0]
    texts = []
    for i, values in enumerate(zip(*columns)):
        if all(v is None for v in values):
            raise DataError(name, f"columns {', '.join(map(repr, fields))} are all null", first_row + i)
        texts.append(" ".join("" if v is None else v for v in values).strip())
    return texts


def id_column(names: Sequence[str], id_field: str | None, name: str) -> str | None:
    """The id column: ``id_field`` (which must exist) or the first of ``_id``/``id`` present."""
    if id_field is not None:
        if id_field not in names:
            raise DataError(name, f"no id column {id_field!r} (columns: {', '.join(map(repr, names))})")
        return id_field
    return next((key for key in ID_FIELDS if key in names), None)


def read_chunks(
    source: str,
    fields: Sequence[str] = ("text",),
    keep: Sequence[str] = (),
    id_field: str | None = None,
    chunk_rows: int = 8192,
    progress: Progress | None = None,
) -> Iterator[ArrowChunk]:
    """Yield the texts of a Parquet file (or folder of them) a record batch at a time.

    Parameters
    ----------
    source : str
        A ``.parquet`` file or a folder (its ``*.parquet`` files, in sorted order).
    fields : sequence of str
        Text column(s); several are joined (see :func:`batch_texts`).
    keep : sequence of str
        Columns copied to the output beside the id (those present in a file).
    id_field : str, optional
        The id column (must exist); default ``_id`` or ``id`` when present.
    chunk_rows : int
        Rows per chunk (bounds memory).
    progress : Progress, optional
        Told the compressed bytes read.

    Raises
    ------
    sse_np.DataError
        A missing column, a non-string or null text: the message names the
        file and, for values, the 1-based row.
    """
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    files = parquet_files(source)
    if progress is not None:
        progress.total_bytes = sum(p.stat().st_size for p in files)
    for path in files:
        name = str(path)
        try:
            pfile = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(name, f"not a readable Parquet file ({_one_line(exc)})") from None
        names = pfile.schema_arrow.names
        for key in fields:
            if key not in names:
                raise DataError(
                    name, f"no column {key!r} (columns: {', '.join(map(repr, names))}); choose one with --field"
                )
        ident = id_column(names, id_field, name)
        kept = [ident] if ident is not None else []
        kept += [k for k in keep if k in names and k not in kept]
        wanted = list(dict.fromkeys([*fields, *kept]))
        row = 1
        size, rows_total = path.stat().st_size, max(pfile.metadata.num_rows, 1)
        for batch in _batches(pa, pfile, chunk_rows, wanted, name):
            if batch.num_rows == 0:
                continue
            texts = batch_texts(batch, fields, name, row)
            table = pa.Table.from_batches([batch]).select(kept)
            yield ArrowChunk(texts, row, KeptRows(table), list(range(row, row + batch.num_rows)), name)
            row += batch.num_rows
            if progress is not None:
                progress.bytes_read += size * batch.num_rows // rows_total


def _batches(pa: Any, pfile: Any, chunk_rows: int, columns: list[str], name: str) -> Iterator[Any]:
    """The file's record batches, row group by row group: a corrupt page is a one-line error naming both."""
    for group in range(pfile.num_row_groups):
        batches = pfile.iter_batches(batch_size=chunk_rows, row_groups=[group], columns=columns)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except (pa.ArrowException, OSError, ValueError) as exc:  # snappy, thrift, dictionary index errors
                raise DataError(
                    name,
                    f"row group {group} of {pfile.num_row_groups} is corrupt and cannot be read ({_one_line(exc)})",
                ) from None
            yield batch


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())  # Arrow's messages span lines


def vectors_array(vectors: np.ndarray) -> Any:
    """``(n, dim)`` float32 vectors as an Arrow ``fixed_size_list<float32>[dim]`` array (no copy)."""
    pa = require_pyarrow()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()), vectors.shape[1])


class ParquetWriter:
    """Rows written to a Parquet stream: kept columns then ``embedding``, one row group per :meth:`write`.

    The schema is fixed by the first write (the kept columns' types); later
    chunks are cast to it.
    """

    def __init__(self, file: IO[bytes], dim: int, column: str = "embedding") -> None:
        self.pa = require_pyarrow()
        self.file, self.dim, self.rows, self.column = file, dim, 0, column
        self._writer: Any = None  # a pyarrow.parquet.ParquetWriter from the first write
        self._schema: Any = None

    def _table(self, vectors: np.ndarray, kept: Any) -> Any:
        pa = self.pa
        if kept is None or len(kept) == 0:
            table = pa.table({})
        elif isinstance(kept, KeptRows):
            table = kept.table
        else:  # row dicts from JSONL input
            table = pa.Table.from_pylist(
                list(kept),
                schema=None if self._schema is None else pa.schema([f for f in self._schema if f.name != self.column]),
            )
        if self.column in table.schema.names:
            raise DataError(self.column, "a kept column has the output column's name; rename it or drop it from --keep")
        if table.num_columns == 0:
            return pa.table({self.column: vectors_array(vectors)})
        return table.append_column(
            pa.field(self.column, pa.list_(pa.float32(), self.dim), nullable=False), vectors_array(vectors)
        )

    def _options(self) -> dict[str, Any]:
        # Float vectors do not compress (snappy saves <1%) but snappy costs ~2.7x the write time; nor do
        # they repeat, and trying a dictionary for them made writing ~5x slower (3 s -> 0.6 s for
        # 125k x 512): both only for the other columns.
        others = [name for name in self._schema.names if name != self.column]
        return {
            "compression": {name: ("none" if name == self.column else "snappy") for name in self._schema.names},
            "use_dictionary": others,
        }

    def write(self, vectors: np.ndarray, kept: Any = None) -> None:
        import pyarrow.parquet as pq

        table = self._table(vectors, kept)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.file, self._schema, **self._options())
        elif table.schema != self._schema:
            try:
                table = table.cast(self._schema)
            except (self.pa.ArrowException, ValueError) as exc:
                raise DataError(self.column, f"kept columns changed type between chunks ({exc})") from None
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.rows += table.num_rows

    def __del__(self) -> None:
        # Aborted (the temp file closed and removed): nothing left to finish.
        # getattr: __init__ may have stopped at require_pyarrow (no extra), before any attribute was set.
        writer = getattr(self, "_writer", None)
        if writer is not None and getattr(self.file, "closed", False):
            writer.is_open = False

    def close(self) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:  # no rows: an empty file with the embedding column
            pa = self.pa
            schema = pa.schema([pa.field(self.column, pa.list_(pa.float32(), self.dim), nullable=False)])
            self._schema = schema
            self._writer = pq.ParquetWriter(self.file, schema, **self._options())
        self._writer.close()
        self.file.flush()

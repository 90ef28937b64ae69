"""``sse-np encode``: texts (lines, JSONL, Parquet; file or stdin) to vectors (``.npy``, JSONL, Parquet)."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..bulk.readers import Chunk, input_format, read_chunks, split_fields
from ..bulk.writers import AtomicOutput, Destination, JsonlWriter, NpyWriter, output_format, resolve_destination
from ..errors import DataError
from ..progress import Progress
from .common import load_model

# How SSEModel.encode's messages name a text: "texts[3] is ..." / "text 3 cannot ...".
_TEXT_INDEX = re.compile(r"\btexts\[(\d+)\]|\btext (\d+)\b")


def run(args: argparse.Namespace) -> int:
    """Stream the input through the model into the output, written atomically."""
    if args.ray is not None:
        from ..bulk.ray import run_cli

        return run_cli(args)
    if args.id_field is not None and not args.keep:
        args.keep = args.id_field  # JSONL: the id goes first among the kept fields
    in_fmt = input_format(args.input, args.input_format, args.field)
    out_fmt = output_format(args.output, args.format)
    where, keep = _check_arguments(args, in_fmt, out_fmt)
    model = load_model(args.model, args.threads)
    if where is not None:  # nor one of the model's files, nor a new file in its folders
        resolve_destination(args.output, model=model)
    if args.dim is not None and args.dim > int(model.dim):
        raise ValueError(f"--dim {args.dim} exceeds the model's native dimension {model.dim}")
    dim = model.get_sentence_embedding_dimension() if args.dim is None else args.dim
    quantize = _output_precision(args, model, dim)  # before any output exists: errors leave nothing
    width, dtype = (dim, "<f4") if quantize is None else quantize.shape
    target = None if where is None else _open_output(where, args.output, out_fmt)
    sink = sys.stdout.buffer if target is None else target.file
    assert sink is not None  # AtomicOutput opens its file by default
    progress = Progress(desc="encode", enabled=sys.stderr.isatty() if args.progress is None else args.progress)
    try:
        writer = _writer(out_fmt, sink, dim, width, dtype)
        for chunk in _chunks(args, in_fmt, keep, progress):
            vectors = _encode_chunk(model, chunk, dim, args, "<stdin>" if args.input == "-" else args.input)
            if quantize is not None:
                vectors = quantize(vectors)
            if in_fmt == "parquet" and out_fmt == "jsonl":  # as JSONL input's fields are checked
                chunk.kept.check_json(chunk.source, chunk.lines)  # type: ignore[attr-defined]  # an ArrowChunk
            with _writing(target):
                writer.write(vectors, chunk.kept if in_fmt != "lines" else None)
            progress.rows_done(writer.rows)
        with _writing(target):
            writer.close()
            if target is not None:
                target.commit()
        progress.rows_done(writer.rows)
    except BaseException:
        if target is not None:
            target.abort()  # the destination keeps what it had
        raise
    finally:
        progress.close()
    shown = "stdout" if target is None else args.output
    kind = "float32" if quantize is None else f"{args.precision} ({np.dtype(dtype).name}, dim {dim})"
    print(f"wrote {writer.rows} x {width} {kind} ({out_fmt}) to {shown}", file=sys.stderr)
    return 0


def _writing(target: AtomicOutput | None) -> contextlib.AbstractContextManager[None]:
    """An OSError while writing (a full disk) names the output file."""
    return contextlib.nullcontext() if target is None else target.writing()


def _check_arguments(args: argparse.Namespace, in_fmt: str, out_fmt: str) -> tuple[Destination | None, tuple[str, ...]]:
    """Refuse what cannot work before anything is read or written; the output's destination and the kept fields."""
    if out_fmt in ("npy", "parquet") and args.output == "-":
        raise DataError(
            "-", f"{out_fmt} output needs a file (it is completed at the end); use --format jsonl to write to stdout"
        )
    if in_fmt == "lines" and (args.field or args.keep):
        raise DataError(args.input, "--field and --keep apply to JSONL input (--input-format jsonl) or Parquet input")
    # An output that is a file the command reads is refused: the input, --ranges, --calibration.
    where = None if args.output == "-" else resolve_destination(args.output, read_files(args, in_fmt))
    # The id always comes first, as Parquet input keeps it: --keep adds fields, it does not drop the id.
    ids = ("_id", "id") if args.id_field is None else (args.id_field,)
    keep = tuple(dict.fromkeys((*ids, *_kept_fields(args))))
    if out_fmt == "npy":
        keep = ()  # .npy holds vectors only
    if out_fmt == "parquet" and args.precision != "float32":
        raise DataError(args.output, "--precision applies to .npy and JSONL output; Parquet holds float32 vectors")
    return where, keep


def read_files(args: argparse.Namespace, in_fmt: str) -> list[str | Path]:
    """Every file ``encode`` reads besides the model: the input (a Parquet folder's files), --ranges, --calibration."""
    files: list[str | Path] = [f for f in (args.input, args.ranges, args.calibration) if f]
    if in_fmt == "parquet" and args.input != "-" and Path(args.input).is_dir():
        from ..bulk.parquet import parquet_files

        files += parquet_files(args.input)  # a hard link to one of them, elsewhere, is refused too
        if args.output != "-" and Path(args.output).resolve().is_relative_to(Path(args.input).resolve()):
            # a new file there would be read by the next run over the folder
            raise DataError(args.output, f"is inside the input folder {args.input}; name an output outside it")
    return files


def _kept_fields(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(k for k in args.keep.split(",") if k) if args.keep else ()


def _open_output(where: Destination, output: str, out_fmt: str) -> AtomicOutput:
    target = AtomicOutput(where)
    if out_fmt == "npy" and not (target.file is not None and target.file.seekable()):
        target.abort()
        raise DataError(
            output,
            "npy output needs a seekable file (its header is completed at the end), "
            "not a pipe or terminal; use --format jsonl",
        )
    return target


def _writer(out_fmt: str, sink: IO[bytes], dim: int, width: int, dtype: str) -> Any:
    """The writer of ``out_fmt``: ``write(vectors, kept)``, ``close()``, ``rows``."""
    if out_fmt == "parquet":
        from ..bulk.parquet import ParquetWriter

        return ParquetWriter(sink, dim)
    return (NpyWriter if out_fmt == "npy" else JsonlWriter)(sink, width, dtype)


def _chunks(args: argparse.Namespace, in_fmt: str, keep: tuple[str, ...], progress: Progress) -> Iterator[Chunk]:
    if in_fmt == "parquet":
        from ..bulk import parquet

        keep_cols = _kept_fields(args)  # the reader puts the id column first (default: it alone)
        fields = split_fields(args.field or "text")
        yield from parquet.read_chunks(
            args.input, fields, keep_cols, args.id_field, chunk_rows=args.batch_size, progress=progress
        )
        return
    yield from read_chunks(
        args.input, in_fmt, args.field or "text", keep, chunk_lines=args.batch_size, progress=progress
    )


def _encode_chunk(model: Any, chunk: Chunk, dim: int, args: argparse.Namespace, name: str) -> np.ndarray:
    """The chunk's vectors; a bad text is reported by its file and line, not its index in the chunk."""
    name = getattr(chunk, "source", name)  # a folder of Parquet files: the file at hand
    try:
        return model.encode(
            chunk.texts, dim, batch_size=args.batch_size, normalize=_normalize(args), max_length=args.max_length
        )
    except (TypeError, ValueError) as exc:  # names text i of this chunk: say which line instead
        found = _TEXT_INDEX.search(str(exc))
        if not found:
            raise
        line = chunk.lines[int(found.group(1) or found.group(2))]
        raise DataError(name, _TEXT_INDEX.sub("the text", str(exc), count=1), line) from None


class _Quantizer:
    """``--precision``: the same codes for every chunk of a stream (fixed int8/uint8 ranges)."""

    def __init__(self, precision: str, ranges: Any, dim: int) -> None:
        from ..retrieval.quantization import bytes_per_vector

        self.precision, self.ranges = precision, ranges
        binary = precision in ("binary", "ubinary")
        self.shape = (
            bytes_per_vector(dim, precision) if binary else dim,
            "|i1" if precision in ("int8", "binary") else "|u1",
        )

    def __call__(self, vectors: Any) -> Any:
        from ..retrieval.quantization import quantize_embeddings

        return quantize_embeddings(vectors, self.precision, ranges=self.ranges)


def _output_precision(args: argparse.Namespace, model: Any, dim: int) -> _Quantizer | None:
    """The quantizer ``--precision`` asks for (None: float32), its int8/uint8 ranges settled first."""
    precision = args.precision
    if precision == "float32":
        if args.ranges or args.calibration:
            raise DataError(
                args.ranges or args.calibration, "--ranges/--calibration apply to --precision int8 or uint8"
            )
        return None
    ranges = None
    if precision in ("int8", "uint8"):
        if args.ranges:
            try:
                ranges = np.load(args.ranges, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(args.ranges, f"cannot read ranges ({exc})") from None
            if ranges.dtype == bool or ranges.dtype.kind not in "iuf":  # str, bool, datetime, complex: not ranges
                raise DataError(args.ranges, f"ranges must be a real-valued (2, {dim}) array, got dtype {ranges.dtype}")
            if ranges.shape != (2, dim) or not np.isfinite(ranges).all():
                raise DataError(
                    args.ranges,
                    f"ranges must be a finite (2, {dim}) array (min; max per dimension), got shape {ranges.shape}",
                )
        elif args.calibration:
            texts: list[str] = []
            for chunk in read_chunks(args.calibration, "lines"):
                texts.extend(chunk.texts)
            if len(texts) < 2:
                raise DataError(args.calibration, "needs at least two texts to calibrate int8/uint8 ranges")
            from ..retrieval.quantization import quantization_ranges

            ranges = quantization_ranges(
                model.encode(texts, dim, normalize=_normalize(args), max_length=args.max_length)
            )
        else:
            raise DataError(
                args.output,
                f"--precision {precision} needs fixed ranges for every chunk of the stream: "
                "pass --ranges RANGES.npy (a (2, dim) array) or --calibration TEXTS "
                "(a file of representative texts, one per line)",
            )
    return _Quantizer(precision, ranges, dim)


def _normalize(args: argparse.Namespace) -> bool | None:
    """``--no-normalize``: raw vectors; else the model format's own default (SSE: normalized)."""
    return False if args.no_normalize else None

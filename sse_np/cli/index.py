"""``sse-np index build`` / ``sse-np index search``: a local :class:`sse_np.Index` from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..bulk.readers import Chunk, input_format, read_chunks, split_fields
from ..errors import DataError
from ..index import Index
from ..progress import Progress
from .common import load_model


def run(args: argparse.Namespace) -> int:
    return build(args) if args.index_command == "build" else search(args)


def build(args: argparse.Namespace) -> int:
    """Read the corpus a chunk at a time into an index, then save it atomically."""
    in_fmt = input_format(args.input, args.input_format, args.field or args.id_field)
    if in_fmt == "lines" and (args.field or args.id_field):
        raise DataError(args.input, "--field and --id-field apply to JSONL or Parquet input")
    out = Path(args.output)
    if out.resolve() == Path(args.input).resolve():
        raise DataError(args.output, "the index folder is the input")
    model = load_model(args.model, args.threads)
    if out.resolve() == Path(model.path).resolve():
        raise DataError(args.output, "the index folder is the model's folder")
    index = Index(
        model,
        dim=args.dim,
        precision=args.precision,
        stopwords=not args.no_stopwords,
        lexical=args.lexical,
        stemmer=args.stemmer,
    )
    progress = Progress(desc="index", enabled=sys.stderr.isatty() if args.progress is None else args.progress)
    try:
        for chunk in _chunks(args, in_fmt, progress):
            index.add(chunk.texts, _ids(chunk, args, len(index)))
            progress.rows_done(len(index))
    finally:
        progress.close()
    index.save(out)
    tokens = f"{index.stemmer} stems" if index.stemmer else index.lexical
    what = f"dim {index.dim}, {index.precision}, BM25 on {tokens}"
    print(f"indexed {len(index)} documents ({what}) into {args.output}", file=sys.stderr)
    return 0


def _chunks(args: argparse.Namespace, in_fmt: str, progress: Progress) -> Iterator[Chunk]:
    keep = (args.id_field,) if args.id_field else ()
    if in_fmt == "parquet":
        from ..bulk import parquet

        fields = split_fields(args.field or "text")
        yield from parquet.read_chunks(
            args.input, fields, keep, args.id_field, chunk_rows=args.batch_size, progress=progress
        )
        return
    yield from read_chunks(
        args.input, in_fmt, args.field or "text", keep, chunk_lines=args.batch_size, progress=progress
    )


def _ids(chunk: Chunk, args: argparse.Namespace, start: int) -> list[Any]:
    """The chunk's document ids: ``--id-field`` values (str or int), else row numbers from 0."""
    if not args.id_field:
        return list(range(start, start + len(chunk.texts)))
    ids = []
    for row, kept in enumerate(chunk.kept):
        value = kept.get(args.id_field)
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            line = chunk.lines[row] if chunk.lines else chunk.first_line + row
            raise DataError(getattr(chunk, "source", args.input), f"--id-field {args.id_field!r}: got {value!r}", line)
        ids.append(value)
    return ids


def search(args: argparse.Namespace) -> int:
    """Print the best ``--k`` documents per query: rank, score and id (or JSON)."""
    model = load_model(args.model, args.threads)
    index = Index.load(args.index_dir, model)
    results = index.search(args.query, k=args.k, mode=args.mode, dim=args.dim)
    if args.json:
        print(json.dumps(results[0] if len(args.query) == 1 else results, ensure_ascii=False))
        return 0
    for query, hits in zip(args.query, results):
        if len(args.query) > 1:
            print(f"# {query}")
        for rank, hit in enumerate(hits, start=1):
            print(f"{rank:>3} {hit['score']:>8.4f}  {hit['id']}")
    return 0

"""``sse-np eval``: retrieval evaluation on BEIR-layout folders (:func:`sse_np.eval.evaluate`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..bulk.writers import AtomicOutput, Destination, resolve_destination
from ..errors import DataError
from ..eval import DEFAULT_DIMS, evaluate, format_report, plot_report, require_matplotlib, save_report
from .common import load_model


def _dataset_files(folders: Sequence[str], split: str) -> list[Path]:
    """The files ``eval`` reads (outputs must not be one of them)."""
    names = ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv")
    return [Path(folder) / name for folder in folders for name in names]


def _write_through(where: Destination, write: Callable[[Path], object]) -> None:
    """``write(path)`` into a temporary file renamed over the destination when complete (see AtomicOutput)."""
    out = AtomicOutput(where, open_file=False)
    try:
        write(out.path)
        out.commit()
    except OSError as exc:
        out.abort()  # the destination keeps what it had
        raise out.failed(exc) from None
    except BaseException:
        out.abort()
        raise


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table; write ``--json`` and ``--plot`` atomically."""
    # Outputs are checked before the (slow) run, and written atomically after it.
    inputs = _dataset_files(args.data_dirs, args.split)
    outputs = {opt: resolve_destination(getattr(args, opt), inputs) for opt in ("json", "plot") if getattr(args, opt)}
    if len(outputs) == 2 and not outputs["json"].stream and outputs["json"].target == outputs["plot"].target:
        raise DataError(args.json, "--json and --plot name the same file")
    if args.plot:
        require_matplotlib()  # fail before the slow part, not after it
    model = load_model(args.model, args.threads)
    for opt in outputs:  # a model's files are never outputs (nor a new file beside them)
        resolve_destination(getattr(args, opt), model=model)
    report = evaluate(
        model,
        args.data_dirs,
        DEFAULT_DIMS if args.dims is None else args.dims,
        split=args.split,
        batch_size=args.batch_size,
        per_query=args.per_query,
        progress=not args.quiet,
        precisions=args.precision,
        retrieval=args.retrieval,
        hybrid_weight=args.hybrid_weight,
        lexical=args.lexical,
        stemmer=args.stemmer,
    )
    sys.stdout.write(format_report(report))
    if args.json:
        _write_through(outputs["json"], lambda path: save_report(report, path))
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        _write_through(outputs["plot"], lambda path: plot_report(report, path))
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0

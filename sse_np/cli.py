"""Command-line interface: ``sse-np eval | encode | info`` (also ``python -m sse_np``).

Every subcommand is a thin wrapper over the public API:

* ``eval``   -- :func:`sse_np.evaluate.evaluate` on BEIR-layout folders,
  table on stdout, progress on stderr, optional JSON report and plot;
* ``encode`` -- ``SSEModel.encode`` on texts read one per line from a file
  or stdin, saved as a float32 ``.npy`` array;
* ``info``   -- where the model was loaded from and its shape.

``--model`` defaults to :func:`sse_np.default_model` (the repository's
``weights/`` folder or the ``SSE_NP_MODEL`` environment variable).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

# Names, not the module: sse_np re-exports the function ``evaluate``, which
# shadows the submodule as an attribute of the package.
from .evaluate import (
    DEFAULT_DIMS,
    _model_info,
    _require_matplotlib,
    evaluate,
    format_report,
    plot_report,
    save_report,
)

PROG = "sse-np"


def _load_model(path: str | None, threads: int | None = None) -> Any:
    import sse_np

    model = sse_np.default_model() if path is None else sse_np.load(path)
    if threads is not None:
        model.threads = threads
    return model


def _version() -> str:
    import sse_np

    return str(getattr(sse_np, "__version__", "unknown"))


def _parse_dims(text: str) -> list[int]:
    """Parse ``"512,256,128"`` into ints (argparse type)."""
    try:
        dims = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return dims


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _read_lines(source: str) -> list[str]:
    """Texts one per line from a file or ``-`` (stdin), as UTF-8.

    Only ``\\n`` (and a ``\\r`` before it) separates texts, so other Unicode
    line breaks stay inside a text; empty lines are kept as empty texts so
    output row i is input line i; a final newline does not add a text.
    """
    if source == "-":
        stream = sys.stdin
        if hasattr(stream, "buffer"):
            stream = io.TextIOWrapper(stream.buffer, encoding="utf-8", newline="")
        data = stream.read()
    else:
        with open(source, encoding="utf-8", newline="") as fh:
            data = fh.read()
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.plot:
        _require_matplotlib()  # fail before the slow part, not after it
    model = _load_model(args.model, args.threads)
    report = evaluate(
        model,
        args.data_dirs,
        DEFAULT_DIMS if args.dims is None else args.dims,
        split=args.split,
        batch_size=args.batch_size,
        per_query=args.per_query,
        progress=not args.quiet,
    )
    sys.stdout.write(format_report(report))
    if args.json:
        save_report(report, args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        plot_report(report, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    texts = _read_lines(args.input)
    model = _load_model(args.model, args.threads)
    if args.dim is not None and args.dim > int(model.dim):
        raise ValueError(f"--dim {args.dim} exceeds the model's native dimension {model.dim}")
    vectors = model.encode(texts, dim=args.dim, batch_size=args.batch_size, normalize=not args.no_normalize)
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
    np.save(args.output, vectors)
    print(f"wrote {vectors.shape[0]} x {vectors.shape[1]} float32 to {args.output}", file=sys.stderr)
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from .convert import save_q4

    model = _load_model(args.model)
    dest = save_q4(model, args.output)
    print(f"wrote the 4-bit layout of {model.path} to {dest}", file=sys.stderr)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    info = _model_info(model)
    rows = [
        ("path", info["path"]),
        ("layout", info["layout"]),
        ("vocab_size (V)", info["vocab_size"]),
        ("dim (D)", info["dim"]),
        ("dtype", info["dtype"]),
    ]
    for key, value in rows:
        print(f"{key:<16}{value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sse-np`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog=PROG, description="SSE static embeddings on CPU (NumPy + numba).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{eval,encode,quantize,info}")
    sub.required = True
    model_help = (
        "model folder or Hugging Face repo id (default: sse_np.default_model(), i.e. $SSE_NP_MODEL or weights/)"
    )

    p_eval = sub.add_parser(
        "eval",
        help="retrieval evaluation (nDCG@10, MRR@10, MAP@100, Recall@100) per dimension",
        description="Evaluate retrieval on BEIR-layout folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).",
    )
    p_eval.add_argument("data_dirs", nargs="+", metavar="DATA_DIR", help="BEIR-layout dataset folder(s)")
    p_eval.add_argument(
        "--dims",
        type=_parse_dims,
        default=None,
        help="comma-separated Matryoshka dimensions (default: 512,256,128,64,32, those <= the model's D)",
    )
    p_eval.add_argument("--model", default=None, help=model_help)
    p_eval.add_argument("--threads", type=_positive_int, default=None,
                        help="most threads for encoding (default: $SSE_NP_THREADS, else all cores)")
    p_eval.add_argument("--json", metavar="OUT.json", help="write the full report as JSON")
    p_eval.add_argument("--plot", metavar="OUT.png", help="plot nDCG@10 vs dimension (needs the 'plot' extra)")
    p_eval.add_argument("--split", default="test", help="qrels split file, qrels/<SPLIT>.tsv (default: test)")
    p_eval.add_argument("--batch-size", type=_positive_int, default=1024, help="encode batch size (default: 1024)")
    p_eval.add_argument("--per-query", action="store_true", help="include per-query metrics and runs in the JSON")
    p_eval.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p_eval.set_defaults(func=_cmd_eval)

    p_enc = sub.add_parser(
        "encode",
        help="encode texts (one per line) to a .npy array",
        description="Encode texts, one per line, from INPUT (or stdin) into a float32 .npy array.",
    )
    p_enc.add_argument("input", nargs="?", default="-", metavar="INPUT", help="text file, or - for stdin (default)")
    p_enc.add_argument("-o", "--output", required=True, metavar="OUT.npy", help="output .npy file")
    p_enc.add_argument("--dim", type=_positive_int, default=None, help="Matryoshka dimension (default: native D)")
    p_enc.add_argument("--model", default=None, help=model_help)
    p_enc.add_argument("--threads", type=_positive_int, default=None,
                       help="most threads for encoding (default: $SSE_NP_THREADS, else all cores)")
    p_enc.add_argument("--batch-size", type=_positive_int, default=1024, help="encode batch size (default: 1024)")
    p_enc.add_argument("--no-normalize", action="store_true", help="keep raw (unnormalised) vectors")
    p_enc.set_defaults(func=_cmd_encode)

    p_q4 = sub.add_parser(
        "quantize",
        help="write a full-precision model in the 4-bit layout",
        description="Quantize a model's table to the SSE 4-bit layout (model_rest.safetensors + embedding.q4_k_m.bin).",
    )
    p_q4.add_argument("output", metavar="OUT_DIR", help="folder to write (created)")
    p_q4.add_argument("--model", default=None, help=model_help)
    p_q4.set_defaults(func=_cmd_quantize)

    p_info = sub.add_parser("info", help="show the model's path, layout, V, D and dtype")
    p_info.add_argument("--model", default=None, help=model_help)
    p_info.set_defaults(func=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, OSError, ImportError) as exc:
        # DataError, ModelLoadError (ValueError subclasses), missing files
        # and a missing optional extra: one clear line instead of a traceback.
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Command-line interface: ``sse-np encode | eval | info | download | warmup | quantize | bench``.

Also ``python -m sse_np``. Every subcommand is a thin wrapper over the
public API:

* ``encode``   -- texts (plain lines or JSONL, file or stdin, ``.gz`` too)
  to ``.npy`` or JSONL, streamed in chunks, written atomically;
* ``eval``     -- :func:`sse_np.evaluate.evaluate` on BEIR-layout folders,
  table on stdout, progress on stderr, optional JSON report and plot;
* ``info``     -- the model (layout, V, D, dtype, tokenizer) and the engine
  (back-end, numba, its cache folder, threads);
* ``download`` -- :func:`sse_np.download` from the Hugging Face hub;
* ``warmup``   -- load (compiling once) the numba kernels, e.g. while
  building a container image, so later processes start warm;
* ``quantize`` -- write a model in the 4-bit layout;
* ``bench``    -- run the benchmark suite of a source checkout (``bench/``).

``--model`` defaults to :func:`sse_np.default_model` (the repository's
``weights/`` folder, the installed copy, or ``$SSE_NP_MODEL``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import streams
from .errors import DataError

from .eval import DEFAULT_DIMS, evaluate, format_report, model_info, plot_report, require_matplotlib, save_report

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


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.plot:
        require_matplotlib()  # fail before the slow part, not after it
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


# How SSEModel.encode's messages name a text: "texts[3] is ..." / "text 3 cannot ...".
_TEXT_INDEX = re.compile(r"\btexts\[(\d+)\]|\btext (\d+)\b")


def _cmd_encode(args: argparse.Namespace) -> int:
    # -- Parquet / Ray (issue 15) --
    if args.ray is not None:
        from .ray_data import run_cli

        return run_cli(args)
    if args.id_field is not None and not args.keep:
        args.keep = args.id_field  # JSONL: the id goes first among the kept fields
    # -- end Parquet / Ray --
    in_fmt = streams.input_format(args.input, args.input_format, args.field)
    out_fmt = streams.output_format(args.output, args.format)
    if out_fmt in ("npy", "parquet") and args.output == "-":
        raise DataError("-", f"{out_fmt} output needs a file (it is completed at the end); "
                             "use --format jsonl to write to stdout")
    if in_fmt == "lines" and (args.field or args.keep):
        raise DataError(args.input, "--field and --keep apply to JSONL input (--input-format jsonl) or Parquet input")
    keep = tuple(k for k in args.keep.split(",") if k) if args.keep else ("_id", "id")
    if args.id_field is not None and args.id_field not in keep:
        keep = (args.id_field, *keep)
    model = _load_model(args.model, args.threads)
    if args.dim is not None and args.dim > int(model.dim):
        raise ValueError(f"--dim {args.dim} exceeds the model's native dimension {model.dim}")
    dim = model.get_sentence_embedding_dimension() if args.dim is None else args.dim
    progress = streams.Progress(sys.stderr.isatty() if args.progress is None else args.progress)
    target = None if args.output == "-" else streams.AtomicOutput(args.output)
    sink = sys.stdout.buffer if target is None else target.file
    name = "<stdin>" if args.input == "-" else args.input
    try:
        if out_fmt == "parquet":  # -- Parquet (issue 15) --
            from .parquet import ParquetWriter

            writer = ParquetWriter(sink, dim)
        else:
            writer = (streams.NpyWriter if out_fmt == "npy" else streams.JsonlWriter)(sink, dim)
        if in_fmt == "parquet":
            from . import parquet

            keep_cols = () if not args.keep else keep  # default: the id column alone
            chunks = parquet.read_chunks(args.input, streams.split_fields(args.field or "text"), keep_cols,
                                         args.id_field, chunk_rows=args.batch_size, progress=progress)
        else:  # -- end Parquet --
            chunks = streams.read_chunks(args.input, in_fmt, args.field or "text", keep,
                                         chunk_lines=args.batch_size, progress=progress)
        for chunk in chunks:
            name = getattr(chunk, "source", name)  # a folder of Parquet files: the file at hand
            try:
                vectors = model.encode(chunk.texts, dim, batch_size=args.batch_size, normalize=not args.no_normalize)
            except (TypeError, ValueError) as exc:  # names text i of this chunk: say which line instead
                found = _TEXT_INDEX.search(str(exc))
                if not found:
                    raise
                line = chunk.lines[int(found.group(1) or found.group(2))]
                raise DataError(name, _TEXT_INDEX.sub("the text", str(exc), count=1), line) from None
            writer.write(vectors, chunk.kept if in_fmt != "lines" else None)
            progress.update(writer.rows)
        writer.close()
        progress.update(writer.rows, final=True)
        if target is not None:
            target.commit()
    except BaseException:
        if target is not None:
            target.abort()  # the destination keeps what it had
        raise
    finally:
        progress.close()
    where = "stdout" if target is None else args.output
    print(f"wrote {writer.rows} x {dim} float32 ({out_fmt}) to {where}", file=sys.stderr)
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from .convert import save_q4

    model = _load_model(args.model)
    dest = save_q4(model, args.output)
    print(f"wrote the 4-bit layout of {model.path} to {dest}", file=sys.stderr)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    info = _info(_load_model(args.model), warm=args.warmup)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        print(f"{key:<16}{value}")
    return 0


def _info(model: Any, warm: bool = False) -> dict[str, Any]:
    """The model and engine facts ``sse-np info`` prints."""
    from importlib import metadata

    from . import engine

    info = model_info(model)
    info = {"path": info["path"], "layout": info["layout"], "vocab_size (V)": info["vocab_size"],
            "dim (D)": info["dim"], "dtype": info["dtype"]}
    info["table bytes"] = int(model.table.data.nbytes)
    trunc = model.tokenizer.truncation
    tokenizer = model.engine.tokenizer
    info["tokenizer"] = {
        "vocab": model.tokenizer.get_vocab_size(with_added_tokens=True),
        "lowercase": _lowercases(model.tokenizer),
        "truncation": f"{trunc['max_length']} tokens, keep {'end' if trunc.get('direction') == 'left' else 'start'}"
        if trunc else "off",
        "numba fast path": "supported" if tokenizer.fast_spec is not None else "not supported (tokenizers)",
        "chunk cache": f"{tokenizer.cache_bytes:,} bytes at most",
    }
    try:
        numba_version = metadata.version("numba")
    except metadata.PackageNotFoundError:
        numba_version = None
    if warm:
        model.warmup()
    status = model.engine.status
    info["backend"] = model.backend + (f" (now: {status})" if status != model.backend else "")
    info["numba"] = ("off (SSE_NP_DISABLE_NUMBA)" if engine.numba_disabled_by_env() else
                     numba_version or "not installed (NumPy back-end)")
    info["numba cache"] = _numba_cache() if model.engine.status == "numba" else None
    info["threads"] = model.threads if model.threads is not None else f"all cores ({model._threads()})"
    info["sse_np"] = _version()
    return info


def _numba_cache() -> str | None:
    import numba

    from .engine import cache

    return cache.cache_dir(numba)


def _lowercases(tokenizer) -> bool | None:
    normalizer = json.loads(tokenizer.to_str()).get("normalizer") or {}
    return normalizer.get("lowercase") if normalizer.get("type") == "BertNormalizer" else None


def _cmd_warmup(args: argparse.Namespace) -> int:
    model = _load_model(args.model, args.threads)
    backend = model.warmup()
    where = _numba_cache() if backend == "numba" else None
    print(f"backend {backend}" + (f"; numba kernels cached in {where}" if where else ""))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .hub import download

    path = download(args.repo_id, revision=args.revision, local_dir=args.dir, force=args.force)
    print(path)  # stdout: usable as MODEL=$(sse-np download ...)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    script = Path(__file__).resolve().parent.parent / "bench" / "run.py"
    if not script.is_file():
        raise FileNotFoundError(
            "the benchmark suite is in the source repository's bench/ folder (it needs the peers in "
            "bench/requirements.txt); run `sse-np bench` from a checkout installed with `pip install -e .`")
    return subprocess.call([sys.executable, str(script), *args.bench_args], cwd=script.parent.parent)


def _add_model_args(parser: argparse.ArgumentParser, threads: bool = False) -> None:
    """``--model`` (and ``--threads``), the same on every subcommand."""
    parser.add_argument("--model", default=None, help="model folder or Hugging Face repo id (default: "
                        "sse_np.default_model(), i.e. $SSE_NP_MODEL or weights/)")
    if threads:
        parser.add_argument("--threads", type=_positive_int, default=None,
                            help="most threads for encoding; 1 never starts a pool "
                                 "(default: $SSE_NP_THREADS, else all cores)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sse-np`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog=PROG, description="SSE static embeddings on CPU (NumPy + numba).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{encode,eval,info,download,warmup,quantize,bench}")
    sub.required = True

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
    _add_model_args(p_eval, threads=True)
    p_eval.add_argument("--json", metavar="OUT.json", help="write the full report as JSON")
    p_eval.add_argument("--plot", metavar="OUT.png", help="plot nDCG@10 vs dimension (needs the 'plot' extra)")
    p_eval.add_argument("--split", default="test", help="qrels split file, qrels/<SPLIT>.tsv (default: test)")
    p_eval.add_argument("--batch-size", type=_positive_int, default=1024, help="encode batch size (default: 1024)")
    p_eval.add_argument("--per-query", action="store_true", help="include per-query metrics and runs in the JSON")
    p_eval.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p_eval.set_defaults(func=_cmd_eval)

    p_enc = sub.add_parser(
        "encode",
        help="encode texts (plain lines or JSONL) to .npy or JSONL",
        description="Encode texts from INPUT (a file, .gz too, or - for stdin) into OUT, streaming in chunks. "
                    "Input: one text per line, or JSONL objects with the text in --field. Output: a float32 "
                    ".npy array (row i = record i), or JSONL with an \"embedding\" per record. OUT is written "
                    "to a temporary file and renamed when complete, so an error never leaves a partial file.",
    )
    p_enc.add_argument("input", nargs="?", default="-", metavar="INPUT",
                       help="text, JSONL or Parquet file, a folder of Parquet files, or - for stdin (default)")
    p_enc.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="output file (.npy, .jsonl or .parquet), or - for JSONL on stdout")
    p_enc.add_argument("--format", choices=streams.OUTPUT_FORMATS, default=None,
                       help="output format (default: from OUT's suffix; - is jsonl)")
    p_enc.add_argument("--input-format", choices=streams.INPUT_FORMATS, default=None,
                       help="input format (default: jsonl for *.jsonl/*.ndjson or with --field, else lines)")
    p_enc.add_argument("--field", default=None, metavar="F[,F2]",
                       help="JSONL field or Parquet column holding the text (default: text); several are joined "
                            "as the evaluation joins a document: title,text -> (title + ' ' + text).strip()")
    p_enc.add_argument("--keep", default=None, metavar="F1,F2",
                       help="JSONL fields / Parquet columns copied into JSONL or Parquet output (default: the id)")
    p_enc.add_argument("--id-field", default=None, metavar="F",
                       help="id field, written first in JSONL/Parquet output (default: _id or id when present)")
    p_enc.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                       help="run on Ray (the 'ray' extra): INPUT is a Parquet file or folder, OUT a folder with "
                            "one Parquet file per input file; resumable. Without ADDRESS: a local cluster")
    p_enc.add_argument("--actors", type=_positive_int, default=None,
                       help="with --ray: encoding actors (default: the cluster's CPUs / --threads)")
    p_enc.add_argument("--dim", type=_positive_int, default=None, help="Matryoshka dimension (default: the model's truncate_dim, else its full width D)")
    _add_model_args(p_enc, threads=True)
    p_enc.add_argument("--batch-size", type=_positive_int, default=1024, help="encode batch size (default: 1024)")
    p_enc.add_argument("--no-normalize", action="store_true", help="keep raw (unnormalised) vectors")
    p_enc.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress on stderr (default: when stderr is a terminal)")
    p_enc.set_defaults(func=_cmd_encode)

    p_q4 = sub.add_parser(
        "quantize",
        help="write a full-precision model in the 4-bit layout",
        description="Quantize a model's table to the SSE 4-bit layout (model_rest.safetensors + embedding.q4_k_m.bin).",
    )
    p_q4.add_argument("output", metavar="OUT_DIR", help="folder to write (created)")
    _add_model_args(p_q4)
    p_q4.set_defaults(func=_cmd_quantize)

    p_info = sub.add_parser("info", help="show the model (layout, V, D, dtype, tokenizer) and the engine",
                            description="Show the model and engine: layout, V, D, dtype, tokenizer settings, "
                                        "back-end, numba version and cache folder, threads.")
    _add_model_args(p_info)
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_info.add_argument("--warmup", action="store_true", help="load the numba kernels first")
    p_info.set_defaults(func=_cmd_info)

    p_dl = sub.add_parser(
        "download",
        help="fetch an SSE model from the Hugging Face hub",
        description="Fetch the files of an SSE model repository into the Hugging Face cache ($HF_HOME/hub, "
                    "shared with other HF tools) or into --dir; prints the local folder. Honours HF_ENDPOINT, "
                    "HF_HUB_OFFLINE, HF_HOME, HF_HUB_CACHE and HF_TOKEN; sizes are checked against the repository "
                    "listing; a dropped connection resumes, and files already fetched are kept.",
    )
    p_dl.add_argument("repo_id", metavar="REPO_ID", help="owner/name on the hub")
    p_dl.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    p_dl.add_argument("--dir", default=None, metavar="DIR", help="put the files in DIR instead of the cache")
    p_dl.add_argument("--force", action="store_true", help="download again even if cached")
    p_dl.set_defaults(func=_cmd_download)

    p_warm = sub.add_parser(
        "warmup",
        help="load (compiling once) the numba kernels, e.g. while building an image",
        description="Load the model's numba kernels, compiling them into numba's cache the first time, so "
                    "that later processes start warm (run it in a Dockerfile after installing).",
    )
    _add_model_args(p_warm, threads=True)
    p_warm.set_defaults(func=_cmd_warmup)

    p_bench = sub.add_parser(
        "bench",
        help="run the benchmark suite (source checkout: bench/run.py)",
        description="Run bench/run.py of a source checkout with these arguments (see bench/README in the "
                    "repository; peers come from bench/requirements.txt). E.g. sse-np bench --quick.",
        add_help=False,
    )
    p_bench.set_defaults(func=_cmd_bench)  # every argument after "bench" goes to bench/run.py
    return parser


def _show_notices() -> None:
    """The library's one-line notices (e.g. that kernels compile, once) on stderr, as ``sse-np: ...``."""
    import logging

    log = logging.getLogger("sse_np")
    if not any(getattr(h, "_sse_np_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
        handler._sse_np_cli = True
        log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)


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
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    _show_notices()
    if args.command == "bench":
        args.bench_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. `sse-np encode ... -o - | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as exc:
        # DataError, ModelLoadError (ValueError subclasses), missing files
        # and a missing optional extra: one clear line instead of a traceback.
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
